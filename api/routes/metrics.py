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
        await m.load.refresh(StatsQueries(session))
    m.broker_up.set(1 if state.broker.is_up else 0)
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
