"""Issue 4.4, concurrency on PostgreSQL: three worker processes, small limits, creates and closes
interleaved (and, at the end, two workers on one SQLite file). The invariants are checked by
the database itself at every commit, not sampled: the test installs triggers in its own
database that record any violation in `test_violations`.

- at each commit that touches an operator or an interaction: assigned(op) <= load_limit and
  current_load == assigned(op) (deferred constraint triggers: they see the committed state plus
  the transaction's own, while it still holds the operator locks);
- at each assignment: no older interaction of the same source is still waiting (FIFO drain).
"""

import sqlite3
import uuid

import asyncpg
import pytest
from aio_pika.abc import AbstractChannel
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from db.models import Lead, Operator
from tests.reliability.conftest import FleetFactory, Sessions, asyncpg_dsn
from tests.reliability.helpers import (
    EventLog,
    assert_event_order,
    assert_every_event_published,
    assert_exactly_once,
    event_log,
    one_source,
    publish_creates,
)
from tests.support.amqp import Bot
from tests.support.processes import WorkerFleet, WorkerProcess
from tests.support.seed import scalar

pytestmark = pytest.mark.slow
MESSAGES = 300
EMAILS = 25  # every e-mail arrives ~12 times, often in concurrent batches of different workers
LIMITS = [2, 3, 4]

INVARIANT_TRIGGERS = """
CREATE TABLE test_violations (id bigserial PRIMARY KEY, kind text NOT NULL, detail text NOT NULL);
CREATE TABLE test_drained (id bigserial PRIMARY KEY, interaction_id int NOT NULL);

CREATE FUNCTION test_check_operator(op integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE o record; n integer;
BEGIN
  IF op IS NULL THEN RETURN; END IF;
  SELECT load_limit, current_load INTO o FROM operators WHERE id = op;
  IF NOT FOUND THEN RETURN; END IF;
  SELECT count(*) INTO n FROM interactions WHERE operator_id = op AND status = 'assigned';
  IF n > o.load_limit THEN
    INSERT INTO test_violations (kind, detail)
    VALUES ('over_limit', format('operator %s: %s assigned, limit %s', op, n, o.load_limit));
  END IF;
  IF n <> o.current_load THEN
    INSERT INTO test_violations (kind, detail)
    VALUES ('load', format('operator %s: current_load %s, assigned %s', op, o.current_load, n));
  END IF;
END $$;

CREATE FUNCTION test_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_TABLE_NAME = 'operators' THEN
    PERFORM test_check_operator(NEW.id);
  ELSE
    PERFORM test_check_operator(NEW.operator_id);
    IF TG_OP = 'UPDATE' THEN PERFORM test_check_operator(OLD.operator_id); END IF;
  END IF;
  RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER test_invariants_interactions AFTER INSERT OR UPDATE ON interactions
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_at_commit();
CREATE CONSTRAINT TRIGGER test_invariants_operators AFTER UPDATE ON operators
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_at_commit();

CREATE FUNCTION test_fifo() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE older integer;
BEGIN
  IF NEW.status = 'assigned' AND (TG_OP = 'INSERT' OR OLD.status <> 'assigned') THEN
    SELECT min(id) INTO older FROM interactions
     WHERE source_id = NEW.source_id AND status = 'waiting' AND id < NEW.id;
    IF older IS NOT NULL THEN
      INSERT INTO test_violations (kind, detail)
      VALUES ('fifo', format('interaction %s assigned while older %s waits', NEW.id, older));
    END IF;
  END IF;
  IF TG_OP = 'UPDATE' AND OLD.status = 'waiting' AND NEW.status = 'assigned' THEN
    INSERT INTO test_drained (interaction_id) VALUES (NEW.id);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER test_fifo AFTER INSERT OR UPDATE ON interactions
  FOR EACH ROW EXECUTE FUNCTION test_fifo();
"""


async def install_invariant_triggers(postgres_url: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(postgres_url))
    try:
        await connection.execute(INVARIANT_TRIGGERS)
    finally:
        await connection.close()


async def run_story(
    fleet: WorkerFleet, count: int, channel: AbstractChannel, source: int, log: EventLog, bot: Bot
) -> tuple[list[WorkerProcess], list[str]]:
    """`count` workers; MESSAGES creates over EMAILS leads; everything closed as it comes."""
    started = [await fleet.start(f"w{n}") for n in range(count)]
    emails = [f"Lead{n % EMAILS}@Example.com " for n in range(MESSAGES)]
    message_ids = await publish_creates(channel, emails, source, uuid.uuid4().hex[:8])
    await close_as_they_come(log, bot)
    return started, message_ids


async def close_as_they_come(log: EventLog, bot: Bot) -> None:
    """React to events like operators finishing work: close every assigned interaction, and
    every fifth one already while it waits (racing the drain that might assign it)."""
    requested: set[int] = set()
    handled = 0
    while len(log.of("interaction.closed")) < MESSAGES:
        await log.wait(
            lambda lg, seen=handled: (
                len(lg.first) > seen or len(lg.of("interaction.closed")) >= MESSAGES
            ),
            within=60,
            what=f"more events ({len(requested)} closes requested)",
        )
        fresh = list(log.first.values())[handled:]
        handled += len(fresh)
        for event in fresh:
            waiting_to_close = (
                event.routing_key == "interaction.waiting" and event.interaction_id % 5 == 0
            )
            if event.interaction_id not in requested and (
                event.routing_key == "interaction.assigned" or waiting_to_close
            ):
                requested.add(event.interaction_id)
                await bot.close(event.interaction_id)


async def test_three_workers_keep_limits_loads_fifo_and_one_lead_per_email(
    postgres_url: str,
    pg_sessions: Sessions,
    workers: FleetFactory,
    channel: AbstractChannel,
    bot: Bot,
) -> None:
    source, operators = await one_source(pg_sessions, LIMITS)
    await install_invariant_triggers(postgres_url)
    log = await event_log(channel)
    async with workers(postgres_url, prefetch_count=20, batch_size=10) as fleet:
        started, message_ids = await run_story(fleet, 3, channel, source, log, bot)
        await assert_every_event_published(pg_sessions, log, within=10)
        await assert_event_order(pg_sessions, log, arrival=False)

    violations = await fetch(postgres_url, "SELECT kind, detail FROM test_violations ORDER BY id")
    assert violations == [], violations[:10]
    drained = await fetch(postgres_url, "SELECT interaction_id FROM test_drained")
    assert len(drained) >= 20, "too few waiting interactions were drained to test FIFO"
    assert all(worker.events("interaction created") for worker in started), "a worker idled"
    await assert_exactly_once(pg_sessions, message_ids)
    loads = await scalar(pg_sessions, select(func.sum(Operator.current_load)))
    assert loads == 0, "every interaction is closed, so every operator is free"
    assert await scalar(pg_sessions, select(func.count()).select_from(Lead)) == EMAILS
    assert len(log.interactions("interaction.waiting")) >= 50
    assert len(operators) == len(LIMITS)


async def fetch(postgres_url: str, query: str) -> list[tuple[object, ...]]:
    connection = await asyncpg.connect(asyncpg_dsn(postgres_url))
    try:
        return [tuple(row) for row in await connection.fetch(query)]
    finally:
        await connection.close()


# SQLite has no deferred triggers: these check the limit after every row written, inside the
# transaction, which is stricter than at commit.
SQLITE_LIMIT_TRIGGERS = [
    "CREATE TABLE test_violations (id INTEGER PRIMARY KEY, detail TEXT NOT NULL)",
    *(
        f"""CREATE TRIGGER test_limit_{when} AFTER {event} ON interactions
        WHEN NEW.status = 'assigned' AND (
            SELECT count(*) FROM interactions WHERE operator_id = NEW.operator_id
            AND status = 'assigned') > (SELECT load_limit FROM operators WHERE id = NEW.operator_id)
        BEGIN
            INSERT INTO test_violations (detail) VALUES ('over limit: ' || NEW.operator_id);
        END"""
        for when, event in (("insert", "INSERT"), ("update", "UPDATE OF status, operator_id"))
    ),
]


async def test_two_sqlite_workers_keep_limits_and_loads_exact(
    sqlite_url: str,
    sqlite_sessions: Sessions,
    workers: FleetFactory,
    channel: AbstractChannel,
    bot: Bot,
) -> None:
    """The same story on one SQLite file shared by two workers, each routing through its own
    `sqlite3` lane: `BEGIN IMMEDIATE` must keep them as exact as PostgreSQL's row locks."""
    source, _ = await one_source(sqlite_sessions, LIMITS)
    with sqlite3.connect(make_url(sqlite_url).database or "") as connection:
        for statement in SQLITE_LIMIT_TRIGGERS:
            connection.execute(statement)
    log = await event_log(channel)
    async with workers(sqlite_url, prefetch_count=20, batch_size=10) as fleet:
        started, message_ids = await run_story(fleet, 2, channel, source, log, bot)
        await assert_every_event_published(sqlite_sessions, log, within=10)

    async with sqlite_sessions() as session:
        violations = (await session.execute(text("SELECT detail FROM test_violations"))).all()
    assert violations == []
    assert all(worker.events("interaction created") for worker in started), "a worker idled"
    assert all(
        w.events("worker started")[0].get("transactions") == "SqliteTransactionRunner"
        for w in started
    )
    await assert_exactly_once(sqlite_sessions, message_ids)
    assert await scalar(sqlite_sessions, select(func.sum(Operator.current_load))) == 0
    assert await scalar(sqlite_sessions, select(func.count()).select_from(Lead)) == EMAILS
    assert len(log.interactions("interaction.waiting")) >= 50
