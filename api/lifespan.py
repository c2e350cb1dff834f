"""Start-up builds every resource of the app, shutdown closes them; nothing in module globals."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from random import Random

from fastapi import FastAPI

from api.broker import Broker
from api.state import ApiState
from db.session import create_engine, create_read_session_factory, create_session_factory


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = app.state.settings
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
        await broker.close()
        await engine.dispose()
