"""SourceOperatorSettingCRUD: per-source operator weights (the spec's API)."""

from collections.abc import Iterable, Sequence

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import SourceOperatorSetting
from db.routing_store.sessions import session_store
from routing.pool import OperatorPool


class SourceOperatorSettingCRUD:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list_by_source(self, source_id: int) -> Sequence[SourceOperatorSetting]:
        stmt = (
            select(SourceOperatorSetting)
            .where(SourceOperatorSetting.source_id == source_id)
            .order_by(SourceOperatorSetting.operator_id)
        )
        return (await self.session.scalars(stmt)).all()

    async def get_candidates_for_distribution(self, source_id: int) -> list[tuple[int, int]]:
        """(operator_id, weight) of the operators the router may give this source's next
        interaction to, by id: the pool's rule (`routing/pool.py`), read as the router reads
        it (the operators locked until the caller's transaction ends)."""
        pool = await OperatorPool.lock(session_store(self.session), [source_id])
        return sorted((c.operator_id, c.weight) for c in pool.candidates(source_id))

    async def replace_source_weights(self, source_id: int, weights: dict[int, int]) -> None:
        """Replace the source's whole set of weights in one statement pair."""
        await self.session.execute(
            delete(SourceOperatorSetting).where(SourceOperatorSetting.source_id == source_id)
        )
        if weights:
            rows = [
                {"source_id": source_id, "operator_id": o, "weight": w} for o, w in weights.items()
            ]
            await self.session.execute(insert(SourceOperatorSetting), rows)

    async def weights_for_sources(self, source_ids: Iterable[int]) -> list[tuple[int, int, int]]:
        """(source_id, operator_id, weight) for every weight of the given sources."""
        wanted = set(source_ids)
        if not wanted:
            return []
        stmt = select(
            SourceOperatorSetting.source_id,
            SourceOperatorSetting.operator_id,
            SourceOperatorSetting.weight,
        ).where(SourceOperatorSetting.source_id.in_(wanted))
        return [(s, o, w) for s, o, w in (await self.session.execute(stmt))]
