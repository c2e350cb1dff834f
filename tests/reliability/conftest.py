"""Fixtures for the multi-process reliability tests: real workers, a test database, its engine."""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.session import create_engine, create_session_factory
from tests.support.processes import WorkerFleet, fleet, worker_env
from worker.relay import lease_for

Sessions = async_sessionmaker[AsyncSession]
FleetFactory = Callable[..., AbstractAsyncContextManager[WorkerFleet]]

# Small intervals so a test waits for outcomes, not for timers.
FAST = {"outbox_relay_interval_s": 0.5, "batch_linger_ms": 1, "shutdown_grace_s": 5}
# A killed worker's unconfirmed events are re-sent once its outbox lease has run out: tests
# that kill one wait that much longer for them.
KILLED_LEASE_S = lease_for(FAST["outbox_relay_interval_s"]).total_seconds()


@pytest.fixture
async def pg_sessions(postgres_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(postgres_url, pool_size=4)
    yield create_session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def sqlite_sessions(sqlite_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(sqlite_url)
    yield create_session_factory(engine)
    await engine.dispose()


@pytest.fixture
def workers(amqp_url: str, tmp_path: Path) -> FleetFactory:
    """`async with workers(database_url, SETTING=value) as fleet:` then `await fleet.start(..)`."""

    def make(database_url: str, **settings: object) -> AbstractAsyncContextManager[WorkerFleet]:
        return fleet(worker_env(amqp_url, database_url, **{**FAST, **settings}), tmp_path)

    return make


def database_name(url: str) -> str:
    name = make_url(url).database
    assert name
    return name


def asyncpg_dsn(url: str) -> str:
    """The SQLAlchemy URL as a plain asyncpg DSN, for test-side raw connections."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
