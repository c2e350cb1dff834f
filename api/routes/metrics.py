"""Prometheus `/metrics` of this API process; gauges are read from the database per scrape."""

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import SessionDep, StateDep
from db.repositories.stats import StatsQueries

router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
async def metrics(state: StateDep, session: SessionDep) -> Response:
    m = state.metrics
    async with session.begin():
        stats = StatsQueries(session)
        loads = await stats.operator_loads()
        m.waiting.set(await stats.count_with_status("waiting"))
    m.operator_load.clear()
    m.operator_limit.clear()
    for op_id, _name, _active, load, limit in loads:
        m.operator_load.labels(str(op_id)).set(load)
        m.operator_limit.labels(str(op_id)).set(limit)
    m.broker_up.set(1 if state.broker.is_up else 0)
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
