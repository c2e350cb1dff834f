"""Start-up builds every resource of the app, shutdown closes them; nothing in module globals."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from random import Random

import structlog
from fastapi import FastAPI

from api.broker import Broker
from api.state import ApiState
from db.session import create_engine, create_read_session_factory, create_session_factory

log = structlog.get_logger(__name__)
OPEN_API_WARNING = (
    "API_TOKEN is not set: every /api/v1 route is open to anyone who can reach this port"
)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = app.state.settings
    if not settings.api_token:  # unset or empty, as create_app reads it; said once per start
        log.warning(OPEN_API_WARNING)
    engine = create_engine(settings.database_url)
    broker = Broker(settings.amqp_url)
    broker.start()
    app.state.api = ApiState(
        settings=settings,
        engine=engine,
        sessions=create_session_factory(engine),
        read_sessions=create_read_session_factory(engine),
        rng=Random(),
        broker=broker,
        metrics=app.state.metrics,
    )
    try:
        yield
    finally:
        await app.state.dashboard.close()  # `leadrouter api` did already; in-process servers not
        await broker.close()
        await engine.dispose()
