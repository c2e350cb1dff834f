"""LoadSnapshotQuery: read-only numbers for the worker's gauges (loads, limits, waiting backlog).

A file of its own so that monitoring reads never grow into the routing repositories, and so the
sampler's cost is visible in one place: two small aggregate queries, no row locks.
"""

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Interaction, Operator


@dataclass(frozen=True)
class OperatorLoad:
    id: int
    current_load: int
    load_limit: int


class LoadSnapshotQuery:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def operator_loads(self) -> list[OperatorLoad]:
        stmt = select(Operator.id, Operator.current_load, Operator.load_limit).order_by(Operator.id)
        return [OperatorLoad(*row) for row in await self.session.execute(stmt)]

    async def waiting_count(self) -> int:
        """Uses the partial index on waiting interactions, so it stays cheap as history grows."""
        stmt = select(func.count()).select_from(Interaction).where(Interaction.status == "waiting")
        return int((await self.session.execute(stmt)).scalar_one())
