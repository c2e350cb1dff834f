"""Shared fixtures: a real broker (own vhost per run), real databases (SQLite and PostgreSQL).

AMQP_URL: use that broker, with a fresh vhost for this run (needs `rabbitmqctl` locally);
otherwise testcontainers starts RabbitMQ when a Docker engine answers; otherwise every test
that needs the broker fails with one line that says how to provide one.
TEST_POSTGRES_URL: an admin URL of a PostgreSQL server; each test gets its own database.
Otherwise testcontainers starts PostgreSQL when Docker answers; otherwise the PostgreSQL
variants are skipped.
"""

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from random import Random

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.session import create_engine, create_session_factory
from messaging.topology import CLOSE_QUEUE, CREATE_QUEUE, DEAD_QUEUE, declare_topology
from schemas.settings import Settings
from tests.support import databases, services
from tests.support.amqp import Bot, Inbox, dead_letter_inbox, events_inbox
from worker.app import Worker
from worker.metrics import WorkerMetrics

# The `spans` fixture (OpenTelemetry in memory) for the tracing tests of every folder.
pytest_plugins = ["tests.support.spans"]


@pytest.fixture(scope="session")
def amqp_session_url() -> Iterator[str]:
    root = os.environ.get("AMQP_URL")
    if root:
        with services.session_vhost(root) as url:
            yield url
    elif services.docker_available():
        with services.rabbitmq_container() as url:
            yield url
    else:
        pytest.fail(f"no RabbitMQ for the tests: {services.HOW_TO}", pytrace=False)


@pytest.fixture
async def amqp_url(amqp_session_url: str) -> str:
    """The session's vhost with the work and dead-letter queues emptied for this test."""
    connection = await aio_pika.connect(amqp_session_url)
    async with connection:
        channel = await connection.channel()
        for name in (CREATE_QUEUE, CLOSE_QUEUE, DEAD_QUEUE):
            await channel.queue_delete(name)
    return amqp_session_url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return databases.migrated_sqlite_template(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str | None]:
    raw = os.environ.get("TEST_POSTGRES_URL")
    if raw:
        yield make_url(raw).set(drivername="postgresql+asyncpg").render_as_string(False)
    elif services.docker_available():
        with services.postgres_container() as url:
            yield url
    else:
        yield None


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    return databases.sqlite_copy(sqlite_template, tmp_path)


@pytest.fixture
async def postgres_url(postgres_admin_url: str | None) -> AsyncIterator[str]:
    if postgres_admin_url is None:
        pytest.skip("PostgreSQL variant: set TEST_POSTGRES_URL")
    url = await databases.create_postgres_database(postgres_admin_url)
    yield url
    await databases.drop_postgres_database(postgres_admin_url, url)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Runs the test once on SQLite and once on PostgreSQL."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)


@pytest.fixture
def settings(amqp_url: str, database_url: str) -> Settings:
    return Settings(
        amqp_url=amqp_url,
        database_url=database_url,
        batch_linger_ms=1,
        outbox_relay_interval_s=0.5,
        shutdown_grace_s=5,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
async def amqp_connection(amqp_url: str) -> AsyncIterator[AbstractRobustConnection]:
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        yield connection


@pytest.fixture
async def channel(amqp_connection: AbstractRobustConnection) -> AbstractChannel:
    channel = await amqp_connection.channel()
    await declare_topology(channel)
    return channel


@pytest.fixture
def bot(channel: AbstractChannel) -> Bot:
    return Bot(channel)


@pytest.fixture
async def events(channel: AbstractChannel) -> Inbox:
    return await events_inbox(channel)


@pytest.fixture
async def dead_letters(channel: AbstractChannel) -> Inbox:
    return await dead_letter_inbox(channel)


@contextlib.asynccontextmanager
async def running_worker(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], seed: int = 7
) -> AsyncIterator[Worker]:
    """A worker in this event loop; stopped (gracefully) and checked when the block ends."""
    worker = Worker(settings, sessions, rng=Random(seed), metrics=WorkerMetrics())
    task = asyncio.create_task(worker.run())
    ready = asyncio.create_task(worker.ready.wait())
    await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        ready.cancel()
        await task  # raises why it could not start
    try:
        yield worker
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, timeout=30)


@pytest.fixture
async def worker(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], channel: AbstractChannel
) -> AsyncIterator[Worker]:
    async with running_worker(settings, sessions) as running:
        yield running
