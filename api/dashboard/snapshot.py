"""One dashboard snapshot: a handful of aggregate queries plus the dead-letter queue's depth."""

from collections import defaultdict
from datetime import datetime, timedelta

from api.models.dashboard import (
    DashboardFlow,
    DashboardOperator,
    DashboardShare,
    DashboardSnapshot,
    DashboardSource,
)
from api.state import ApiState
from db.repositories.dashboard import DashboardQueries, OperatorRow, ShareRow
from db.types import utcnow
from messaging.topology import DEAD_QUEUE

FLOW_SECONDS = 300  # the flow chart's span: the last five minutes, one point per second
RECENT = timedelta(hours=1)  # "assigned in the last hour"


async def build_snapshot(
    state: ApiState, window_s: int, now: datetime | None = None
) -> DashboardSnapshot:
    """Read in one transaction, so the numbers agree with each other."""
    now = now or utcnow()
    async with state.read_sessions() as session, session.begin():
        queries = DashboardQueries(session)
        operators = await queries.operators(now - RECENT)
        sources = await queries.sources()
        window_start = now - timedelta(seconds=window_s)
        shares = await queries.shares(window_start)
        created = await queries.created_by_source(window_start)
        flow = await queries.routed_per_second(now - timedelta(seconds=FLOW_SECONDS))
    dead_letters = await state.broker.message_count(DEAD_QUEUE)
    shares_by_source = _shares(shares, {o.id for o in operators if o.active})
    return DashboardSnapshot(
        generated_at=now,
        window_s=window_s,
        broker="ok" if state.broker.is_up else "down",
        dead_letters=dead_letters,
        waiting_count=sum(s.waiting for s in sources),
        operators=[_operator(o) for o in operators],
        sources=[
            DashboardSource(
                id=s.id,
                identifier=s.identifier,
                max_wait_s=s.max_wait_s,
                waiting=s.waiting,
                oldest_waiting_at=s.oldest_waiting_at,
                in_window=created.get(s.id, 0),
                shares=shares_by_source.get(s.id, []),
            )
            for s in sources
        ],
        flow=DashboardFlow(seconds=FLOW_SECONDS, points=flow),
    )


def _operator(row: OperatorRow) -> DashboardOperator:
    return DashboardOperator.model_validate(row, from_attributes=True)  # same field names


def _shares(rows: list[ShareRow], active: set[int]) -> dict[int, list[DashboardShare]]:
    """Configured share as the demo computes it: weight over the source's active weights."""
    totals: dict[int, int] = defaultdict(int)
    for row in rows:
        if row.weight is not None and row.operator_id in active:
            totals[row.source_id] += row.weight
    result: dict[int, list[DashboardShare]] = defaultdict(list)
    for row in rows:
        total = totals[row.source_id]
        counts = row.weight is not None and row.operator_id in active and total > 0
        configured = round(row.weight / total, 4) if counts and row.weight else 0.0
        result[row.source_id].append(
            DashboardShare(
                operator_id=row.operator_id,
                weight=row.weight,
                configured=configured,
                observed=row.observed,
            )
        )
    return result
