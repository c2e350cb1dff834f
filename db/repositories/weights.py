"""SourceOperatorSettingCRUD: per-source operator weights (the spec's API)."""

from collections.abc import Iterable, Sequence

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Operator, Source, SourceOperatorSetting
from routing.facts import SourceRules, source_rules


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
        """(operator_id, weight) of active operators under their limit for this source."""
        stmt = (
            select(Operator.id, SourceOperatorSetting.weight)
            .join(SourceOperatorSetting, SourceOperatorSetting.operator_id == Operator.id)
            .where(
                SourceOperatorSetting.source_id == source_id,
                Operator.active.is_(True),
                Operator.current_load < Operator.load_limit,
            )
            .order_by(Operator.id)
        )
        return [(op_id, weight) for op_id, weight in (await self.session.execute(stmt))]

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

    async def source_rules(self, source_ids: Iterable[int]) -> SourceRules:
        """Which of these sources exist, which are sticky, and their weights, in one round trip
        (a LEFT JOIN)."""
        wanted = set(source_ids)
        if not wanted:
            return source_rules([])
        setting = SourceOperatorSetting
        stmt = (
            select(
                Source.id,
                Source.sticky,
                Source.accept_timeout_s,
                setting.operator_id,
                setting.weight,
            )
            .outerjoin(setting, setting.source_id == Source.id)
            .where(Source.id.in_(wanted))
        )
        return source_rules(await self.session.execute(stmt))

    async def sources_served_by(self, operator_ids: Iterable[int]) -> set[int]:
        wanted = set(operator_ids)
        if not wanted:
            return set()
        stmt = select(SourceOperatorSetting.source_id).where(
            SourceOperatorSetting.operator_id.in_(wanted)
        )
        return set((await self.session.scalars(stmt)).all())
