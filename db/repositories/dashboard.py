"""DashboardQueries: the aggregates behind the supervisors' live page (`GET /dashboard`).

Every query answers aggregates, never one row per interaction, so a snapshot stays small with
any number of operators and waiting interactions. Windows over history ("the last hour") start
at an interaction id found by a binary search on the primary key, because ids grow with
`created_at` and neither `created_at` nor `assigned_at` has an index: a window reads its own
rows, not the whole history.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Integer, cast, extract, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Interaction, Operator, Source, SourceOperatorSetting
from schemas.events import InteractionStatus

# Ids and `created_at` grow together only roughly: concurrent workers take ids and clocks in
# slightly different orders. A window's first id is searched this much earlier, and the rows
# are then filtered on the time itself.
ID_SEARCH_SLACK = timedelta(seconds=30)


@dataclass(frozen=True)
class OperatorRow:
    id: int
    name: str
    active: bool
    current_load: int
    load_limit: int
    offered: int
    assigned_last_hour: int


@dataclass(frozen=True)
class SourceRow:
    id: int
    identifier: str
    max_wait_s: int | None  # None until sources have a waiting SLA (the contract's max_wait_s)
    waiting: int
    oldest_waiting_at: datetime | None


@dataclass(frozen=True)
class ShareRow:
    source_id: int
    operator_id: int
    weight: int | None  # None: the operator served the source in the window but has no weight now
    observed: int


class DashboardQueries:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def first_id_since(self, moment: datetime) -> int:
        """An id such that every interaction created at or after `moment` has an id >= it.

        Binary search over the primary key: about log2(rows) point reads, whatever the size of
        the table. 0 on an empty table.
        """
        bounds = (
            await self.session.execute(select(func.min(Interaction.id), func.max(Interaction.id)))
        ).one()
        low, high = bounds
        if low is None or high is None:
            return 0
        moment = moment - ID_SEARCH_SLACK
        high += 1  # the answer lies in [low, high]; high means "none yet"
        while low < high:
            middle = (low + high) // 2
            row = (
                await self.session.execute(
                    select(Interaction.id, Interaction.created_at)
                    .where(Interaction.id >= middle)
                    .order_by(Interaction.id)
                    .limit(1)
                )
            ).first()
            if row is None or row.created_at >= moment:
                high = middle
            else:
                low = row.id + 1
        return int(low)

    async def operators(self, recent_since: datetime) -> list[OperatorRow]:
        """Every operator with its load, its offered interactions and how many it got lately."""
        first_id = await self.first_id_since(recent_since)
        offered = await self._offered_by_operator()
        recent = {
            operator_id: count
            for operator_id, count in await self.session.execute(
                select(Interaction.operator_id, func.count())
                .where(
                    Interaction.id >= first_id,
                    Interaction.assigned_at >= recent_since,
                    Interaction.operator_id.is_not(None),
                )
                .group_by(Interaction.operator_id)
            )
            if operator_id is not None
        }
        rows = await self.session.execute(
            select(
                Operator.id,
                Operator.name,
                Operator.active,
                Operator.current_load,
                Operator.load_limit,
            ).order_by(Operator.id)
        )
        return [
            OperatorRow(i, n, a, load, limit, offered.get(i, 0), recent.get(i, 0))
            for i, n, a, load, limit in rows
        ]

    async def _offered_by_operator(self) -> dict[int, int]:
        """Offered interactions per operator, through the (operator_id, status) index."""
        rows = await self.session.execute(
            select(Operator.id, func.count(Interaction.id))
            .join(Interaction, Interaction.operator_id == Operator.id)
            .where(Interaction.status == InteractionStatus.OFFERED)
            .group_by(Operator.id)
        )
        return {operator_id: count for operator_id, count in rows}

    async def sources(self) -> list[SourceRow]:
        """Every source with its waiting interactions: how many, and since when the oldest."""
        waiting = {
            source_id: (count, oldest)
            for source_id, count, oldest in await self.session.execute(
                select(
                    Interaction.source_id,
                    func.count(),
                    func.min(Interaction.created_at),
                )
                .where(Interaction.status == InteractionStatus.WAITING)
                .group_by(Interaction.source_id)
            )
        }
        result: list[SourceRow] = []
        rows = await self.session.execute(
            select(Source.id, Source.identifier, Source.max_wait_s).order_by(Source.id)
        )
        for source_id, identifier, max_wait_s in rows:
            count, oldest = waiting.get(source_id, (0, None))
            result.append(SourceRow(source_id, identifier, max_wait_s, count, oldest))
        return result

    async def shares(self, since: datetime) -> list[ShareRow]:
        """Per source and operator: the configured weight and the interactions it got since."""
        first_id = await self.first_id_since(since)
        observed: dict[tuple[int, int], int] = {
            (source_id, operator_id): count
            for source_id, operator_id, count in await self.session.execute(
                select(Interaction.source_id, Interaction.operator_id, func.count())
                .where(
                    Interaction.id >= first_id,
                    Interaction.created_at >= since,
                    Interaction.operator_id.is_not(None),
                )
                .group_by(Interaction.source_id, Interaction.operator_id)
            )
            if operator_id is not None
        }
        weights = {
            (source_id, operator_id): weight
            for source_id, operator_id, weight in await self.session.execute(
                select(
                    SourceOperatorSetting.source_id,
                    SourceOperatorSetting.operator_id,
                    SourceOperatorSetting.weight,
                )
            )
        }
        keys = sorted(weights.keys() | observed.keys())
        return [ShareRow(s, o, weights.get((s, o)), observed.get((s, o), 0)) for s, o in keys]

    async def created_by_source(self, since: datetime) -> dict[int, int]:
        """Per source: its interactions created since, whatever became of them (assigned,
        offered, waiting, closed): the page's "N in the window"."""
        first_id = await self.first_id_since(since)
        rows = await self.session.execute(
            select(Interaction.source_id, func.count())
            .where(Interaction.id >= first_id, Interaction.created_at >= since)
            .group_by(Interaction.source_id)
        )
        return {source_id: count for source_id, count in rows}

    async def routed_per_second(self, since: datetime) -> list[tuple[int, int]]:
        """(unix second, interactions created in it) since `since`, seconds without any left out."""
        first_id = await self.first_id_since(since)
        second = self._unix_second(Interaction.created_at)
        rows = await self.session.execute(
            select(second, func.count())
            .where(Interaction.id >= first_id, Interaction.created_at >= since)
            .group_by(second)
            .order_by(second)
        )
        return [(int(s), int(n)) for s, n in rows]

    def _unix_second(self, column: Any) -> ColumnElement[int]:
        """The whole unix second of a moment (SQLite stores UTC text, PostgreSQL timestamptz)."""
        if self.session.get_bind().dialect.name == "sqlite":
            return cast(func.strftime("%s", column), Integer)
        return cast(func.floor(extract("epoch", column)), BigInteger)
