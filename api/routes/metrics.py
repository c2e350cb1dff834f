"""Prometheus `/metrics` of this API process; gauges are read from the database per scrape.

At the root, where scrapers look for it, yet guarded like `/api/v1` when `API_TOKEN` is set: it
shows operator ids and loads."""

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import SessionDep, StateDep
from api.routes.params import METRICS_PATH
from db.repositories.stats import StatsQueries

routes = APIRouter(tags=["metrics"])


@routes.get(METRICS_PATH, include_in_schema=False)
async def metrics(state: StateDep, session: SessionDep) -> Response:
    m = state.metrics
    async with session.begin():
        await m.load.refresh(StatsQueries(session))
    m.broker_up.set(1 if state.broker.is_up else 0)
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
