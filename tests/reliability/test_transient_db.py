"""Issue 4.3, database errors: transient ones are retried with bounded exponential backoff and,
past the retry budget, dead-lettered with the reason; permanent ones are not retried at all.

Every error here is produced by the real database, not simulated: a SQLite write lock held by
another connection, PostgreSQL backends terminated mid-transaction, a real serialization
failure under REPEATABLE READ, and a CHECK constraint that refuses one message for ever.
"""

import inspect
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from db.retry import backoff_delay
from tests.reliability.conftest import FleetFactory, Sessions, asyncpg_dsn, database_name
from tests.reliability.helpers import (
    assert_every_event_published,
    assert_exactly_once,
    event_log,
    one_source,
    publish_creates,
)
from tests.support.amqp import Bot, Inbox
from tests.support.processes import LogLine, until

pytestmark = pytest.mark.slow
RETRYING = "transient error, retrying"


@contextmanager
def sqlite_write_lock(sqlite_url: str) -> Iterator[sqlite3.Connection]:
    """Another connection holding BEGIN EXCLUSIVE: every writer waits busy_timeout, then fails."""
    path = make_url(sqlite_url).database
    assert path
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield holder
    finally:
        if holder.in_transaction:
            holder.rollback()
        holder.close()


def assert_bounded_backoff(retries: list[LogLine]) -> None:
    """Each logged delay lies within full jitter of base * 2**(attempt-1), capped (db.retry)."""
    defaults = inspect.signature(backoff_delay).parameters
    base, cap = defaults["base_s"].default, defaults["cap_s"].default
    for line in retries:
        ceiling = min(cap, base * 2 ** (int(line["attempt"]) - 1))
        assert 0 <= float(line["delay_s"]) <= ceiling + 0.001, line


async def test_sqlite_lock_shorter_than_the_budget_is_retried_and_succeeds(
    sqlite_url: str, sqlite_sessions: Sessions, workers: FleetFactory, bot: Bot, events: Inbox
) -> None:
    source, _ = await one_source(sqlite_sessions, [5])
    async with workers(sqlite_url, db_retry_attempts=4) as fleet:
        worker = await fleet.start("worker")
        with sqlite_write_lock(sqlite_url):
            message_id = await bot.create("locked@example.com", source)
            retry = await worker.wait_for(RETRYING, within=20)
        event = await events.next(within=20)

    assert "database is locked" in retry["error"]
    assert event.routing_key == "interaction.assigned"
    assert event.body["message_id"] == message_id
    assert_bounded_backoff(worker.events(RETRYING))
    await assert_exactly_once(sqlite_sessions, [message_id])


async def test_sqlite_lock_longer_than_the_budget_dead_letters_with_reason(
    sqlite_url: str,
    sqlite_sessions: Sessions,
    workers: FleetFactory,
    bot: Bot,
    events: Inbox,
    dead_letters: Inbox,
) -> None:
    """Two attempts of busy_timeout each, then interactions.dead; the next message goes through."""
    source, _ = await one_source(sqlite_sessions, [5])
    async with workers(sqlite_url, db_retry_attempts=2) as fleet:
        worker = await fleet.start("worker")
        with sqlite_write_lock(sqlite_url):
            lost_cause = await bot.create("locked@example.com", source)
            dead = await dead_letters.next(within=40)
        after = await bot.create("after@example.com", source)
        event = await events.next(within=20)

    reason = dead.headers["x-error"]
    assert dead.message.message_id == lost_cause
    assert "database unavailable: still failing after 2 attempts" in reason
    assert "database is locked" in reason
    assert [line["attempt"] for line in worker.events(RETRYING)] == [1]
    assert event.body["message_id"] == after
    await assert_exactly_once(sqlite_sessions, [after])


@asynccontextmanager
async def pg_admin(postgres_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(asyncpg_dsn(postgres_url))
    try:
        yield connection
    finally:
        await connection.close()


async def wait_until_worker_blocks_on_a_lock(admin: asyncpg.Connection, database: str) -> None:
    """Poll pg_stat_activity (no event exists for this) until a backend waits for a row lock."""

    async def blocked() -> bool:
        waiting = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
            database,
        )
        return bool(waiting)

    await until(blocked, within=20, what="the worker blocked on the operator row lock")


async def terminate_backends(admin: asyncpg.Connection, database: str) -> int:
    """pg_terminate_backend on every other session of the test database: a lost connection."""
    killed: Any = await admin.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = $1 AND pid <> pg_backend_pid()",
        database,
    )
    return int(killed)


async def test_pg_connection_lost_mid_transaction_and_mid_stream_is_retried(
    postgres_url: str, pg_sessions: Sessions, workers: FleetFactory, bot: Bot, channel: Any
) -> None:
    """The worker's routing transaction waits on a row lock the test holds; the test terminates
    the worker's backend under it. Then 600 messages flow while every backend is terminated
    three more times. Each message is one Interaction, each event arrives."""
    source, [operator] = await one_source(pg_sessions, [400])
    database = database_name(postgres_url)
    log = await event_log(channel)
    async with workers(postgres_url, prefetch_count=100, batch_size=50) as fleet:
        worker = await fleet.start("worker")
        async with pg_admin(postgres_url) as admin:
            async with admin.transaction():
                await admin.execute("SELECT 1 FROM operators WHERE id = $1 FOR UPDATE", operator)
                first = await bot.create("first@example.com", source)
                await wait_until_worker_blocks_on_a_lock(admin, database)
                assert await terminate_backends(admin, database) >= 1
            retry = await worker.wait_for(RETRYING, within=20)
            await log.wait(lambda lg: len(lg.first) == 1, 20, "the first event")

            emails = [f"s{n}@example.com" for n in range(600)]
            stream = await publish_creates(channel, emails, source, uuid.uuid4().hex[:8])
            for progress in (150, 300, 450):
                await log.wait(lambda lg, p=progress: len(lg.first) > p, 30, f"{progress} events")
                await terminate_backends(admin, database)
        await log.wait(lambda lg: len(lg.first) == 601, 60, "every event")
        await assert_every_event_published(pg_sessions, log, within=10)

    assert "connection" in retry["error"].lower() or "terminat" in retry["error"].lower(), retry
    assert_bounded_backoff(worker.events(RETRYING))
    await assert_exactly_once(pg_sessions, [first, *stream])


async def test_pg_serialization_failure_is_retried(
    postgres_url: str, pg_sessions: Sessions, workers: FleetFactory, bot: Bot, events: Inbox
) -> None:
    """Under REPEATABLE READ, a concurrent update of the operator row the routing transaction
    locks makes PostgreSQL raise SQLSTATE 40001; the retry (new snapshot) succeeds."""
    source, [operator] = await one_source(pg_sessions, [5])
    database = database_name(postgres_url)
    async with pg_admin(postgres_url) as admin:
        await admin.execute(
            f"ALTER DATABASE \"{database}\" SET default_transaction_isolation = 'repeatable read'"
        )
        async with workers(postgres_url) as fleet:
            worker = await fleet.start("worker")
            async with admin.transaction():
                await admin.execute("UPDATE operators SET name = name WHERE id = $1", operator)
                message_id = await bot.create("serial@example.com", source)
                await wait_until_worker_blocks_on_a_lock(admin, database)
            retry = await worker.wait_for(RETRYING, within=20)
            event = await events.next(within=20)

    assert "could not serialize" in retry["error"], retry
    assert event.body["message_id"] == message_id
    assert event.body["operator_id"] == operator
    await assert_exactly_once(pg_sessions, [message_id])


async def test_pg_permanent_error_is_not_retried_and_dead_lettered_alone(
    postgres_url: str,
    pg_sessions: Sessions,
    workers: FleetFactory,
    bot: Bot,
    events: Inbox,
    dead_letters: Inbox,
) -> None:
    """A CHECK constraint refuses one payload: no retry, its batch-mates are still routed."""
    source, _ = await one_source(pg_sessions, [10])
    async with pg_admin(postgres_url) as admin:
        await admin.execute(
            "ALTER TABLE interactions ADD CONSTRAINT ck_interactions_refused_by_test "
            "CHECK (payload IS NULL OR NOT (payload ? 'refuse'))"
        )
    good = [await bot.create(f"good{n}@example.com", source) for n in range(3)]
    bad = await bot.create("bad@example.com", source, {"refuse": True})
    good.append(await bot.create("good3@example.com", source))
    async with workers(postgres_url) as fleet:
        worker = await fleet.start("worker")
        dead = await dead_letters.next(within=20)
        received = await events.take(4, within=20)

    assert dead.message.message_id == bad
    assert "internal error" in dead.headers["x-error"]
    assert "ck_interactions_refused_by_test" in dead.headers["x-error"]
    assert worker.events(RETRYING) == []
    assert len(worker.events("routing failed")) == 1
    assert {e.body["message_id"] for e in received} == set(good)
    await assert_exactly_once(pg_sessions, good)
