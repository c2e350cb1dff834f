"""StatsQueries: the aggregates behind `/stats` and `/metrics`, each one grouped query."""

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from db.models import Interaction, Operator, Source
from schemas.events import InteractionStatus

OperatorLoadRow = tuple[int, str, bool, int, int]
CountRow = tuple[int, str, int]


class StatsQueries:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def operator_loads(self) -> list[OperatorLoadRow]:
        """(id, name, active, current_load, load_limit): the maintained counter, as routed by."""
        stmt = select(
            Operator.id, Operator.name, Operator.active, Operator.current_load, Operator.load_limit
        ).order_by(Operator.id)
        return [(i, n, a, c, lim) for i, n, a, c, lim in await self.session.execute(stmt)]

    async def interactions_by_operator(self) -> list[CountRow]:
        """(id, name, count) for every operator, any status, zero included."""
        return await self._interactions_per(Operator.id, Operator.name, Interaction.operator_id)

    async def interactions_by_source(self) -> list[CountRow]:
        """(id, identifier, count) for every source, any status, zero included."""
        return await self._interactions_per(Source.id, Source.identifier, Interaction.source_id)

    async def count_with_status(self, status: InteractionStatus) -> int:
        stmt = select(func.count()).select_from(Interaction).where(Interaction.status == status)
        return int((await self.session.execute(stmt)).scalar_one())

    async def count_overdue(self) -> int:
        """Interactions that ever waited past their source's SLA (any status now)."""
        stmt = (
            select(func.count()).select_from(Interaction).where(Interaction.overdue_at.is_not(None))
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def oldest_waiting_by_source(self) -> list[tuple[int, datetime]]:
        """(source_id, created_at of its oldest waiting interaction), for sources with any."""
        stmt = (
            select(Interaction.source_id, func.min(Interaction.created_at))
            .where(Interaction.status == InteractionStatus.WAITING)
            .group_by(Interaction.source_id)
        )
        return [(s, t) for s, t in await self.session.execute(stmt)]

    async def _interactions_per(
        self,
        key: InstrumentedAttribute[int],
        label: InstrumentedAttribute[str],
        reference: InstrumentedAttribute[int] | InstrumentedAttribute[int | None],
    ) -> list[CountRow]:
        """(key, label, count of the interactions whose `reference` is that key) for every row
        of the key's table, in key order: an outer join, so rows without any count zero."""
        stmt = (
            select(key, label, func.count(Interaction.id))
            .outerjoin(Interaction, reference == key)
            .group_by(key, label)
            .order_by(key)
        )
        return [(k, n, c) for k, n, c in await self.session.execute(stmt)]
