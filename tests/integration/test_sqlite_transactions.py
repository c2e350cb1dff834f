"""The sqlite3 transaction runner (plain sqlite3 on its own thread) against SQLAlchemy's.

The same batches, routed with the same seed into two copies of one database, must leave the
same rows, read back through the ORM the API uses: the two stores are interchangeable.
"""

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from random import Random
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.errors import is_transient
from db.models import Interaction, Lead, OutboxEvent
from db.routing_store.sqlite import CompiledStatements, SqliteStatements, sqlite_store
from db.routing_store.store import SqlRoutingStore
from db.session import create_engine, create_session_factory
from db.sqlite_transactions import SqliteTransactionRunner, run_to_completion
from db.transactions import SessionTransactionRunner, TransactionRunner, open_transaction_runner
from db.wal_checkpointer import LANE_AUTOCHECKPOINT_PAGES, WalCheckpointer
from routing.commands import CloseRequest, CreateRequest, Envelope
from routing.outcomes import Routed, RoutingOutcome
from routing.router import Router
from routing.rows import NewInteraction, NewLead
from routing.store import RoutingStore
from schemas.events import InteractionStatus
from schemas.messages import CloseInteraction, CreateInteraction
from tests.support import databases, seed

Sessions = async_sessionmaker[AsyncSession]
PAYLOADS: list[Any] = [None, {"text": "hi", "n": [1, 2.5, True, None]}, "plain", 7, ["ü", {}]]


@pytest.fixture
async def two_databases(
    sqlite_template: Path, tmp_path: Path
) -> AsyncIterator[list[tuple[str, Sessions]]]:
    urls = [databases.sqlite_copy(sqlite_template, tmp_path) for _ in range(2)]
    engines = [create_engine(url) for url in urls]
    yield [(url, create_session_factory(e)) for url, e in zip(urls, engines, strict=True)]
    for engine in engines:
        await engine.dispose()


async def set_up(sessions: Sessions) -> int:
    """Two sources, three operators (one inactive); returns the first source's id."""
    first, second = await seed.add_source(sessions, "one"), await seed.add_source(sessions, "two")
    a = await seed.add_operator(sessions, "a", load_limit=2)
    b = await seed.add_operator(sessions, "b", load_limit=3)
    off = await seed.add_operator(sessions, "off", load_limit=5, active=False)
    await seed.set_weights(sessions, first, {a: 30, b: 70, off: 50})
    await seed.set_weights(sessions, second, {b: 100})
    return first


def creates(first_source: int, start: int, count: int) -> list[CreateRequest]:
    """Creates over both sources and an unknown one, some leads repeated, one message_id twice."""
    requests = []
    for n in range(start, start + count):
        source = [first_source, first_source + 1, 999][n % 3] if n % 7 else first_source
        command = CreateInteraction(
            email=f"Lead{n % 4}@Example.com ", source_id=source, payload=PAYLOADS[n % 5]
        )
        message_id = f"m-{n}" if n != start + 3 else f"m-{start}"
        requests.append(CreateRequest(n, command, Envelope(message_id, f"c-{n}", f"reply-{n}")))
    return requests


def closes(outcome: RoutingOutcome, keys: list[int], start_key: int) -> list[CloseRequest]:
    ids = [r.interaction_id for k in keys if isinstance(r := outcome.results[k], Routed)]
    ids.append(424242)  # unknown
    return [
        CloseRequest(start_key + n, CloseInteraction(interaction_id=i), Envelope(None, f"x-{n}"))
        for n, i in enumerate(ids)
    ]


async def route_story(runner: TransactionRunner, first_source: int) -> list[RoutingOutcome]:
    """New interactions, repeats of known message_ids, closes that free slots and drain."""
    rng = Random(11)

    async def batch(new: list[CreateRequest], ends: list[CloseRequest]) -> RoutingOutcome:
        return await runner.run(lambda store: Router(store, rng).route_batch(new, ends))

    one = await batch(creates(first_source, 0, 12), [])
    two = await batch(creates(first_source, 10, 6), closes(one, [0, 1, 2, 4], 100))
    events = [e.event_id for e in two.events[:3]]

    async def mark(store: RoutingStore) -> None:
        await store.record_published(events, datetime.now(UTC))

    await runner.run(mark)
    return [one, two]


def shape(outcomes: list[RoutingOutcome]) -> list[Any]:
    """What the router answered, without the per-run random ids."""
    return [
        sorted(
            (k, r.status, r.operator_id, r.replayed) if isinstance(r, Routed) else (k, r.reason)
            for k, r in outcome.results.items()
        )
        for outcome in outcomes
    ]


async def stored(sessions: Sessions) -> dict[str, Any]:
    """Every row the story wrote, as the ORM reads it, without per-run random values."""
    async with sessions() as session:
        leads = {lead.uuid: lead.email for lead in await session.scalars(select(Lead))}
        rows = (await session.scalars(select(Interaction).order_by(Interaction.id))).all()
        events = (await session.scalars(select(OutboxEvent).order_by(OutboxEvent.id))).all()
    for moment in [r.created_at for r in rows] + [e.created_at for e in events]:
        assert moment.tzinfo is UTC
    return {
        "leads": sorted(leads.values()),
        "interactions": [
            (
                r.id, leads[r.lead_uuid], r.source_id, r.operator_id, r.status, r.is_active,
                r.payload, r.message_id, r.correlation_id, r.reply_to,
                r.assigned_at is not None, r.closed_at is not None,
            )
            for r in rows
        ],
        "events": [
            (
                e.interaction_id, e.routing_key, e.correlation_id, e.reply_to,
                e.published_at is not None, _event_fields(e.body),
            )
            for e in events
        ],
        "loads": {op_id: op.current_load for op_id, op in (await seed.operators(sessions)).items()},
    }  # fmt: skip


def _event_fields(body: str) -> dict[str, Any]:
    document = json.loads(body)
    for varying in ("event_id", "lead_uuid", "created_at"):
        document.pop(varying)
    return dict(document)


async def test_both_lanes_write_the_same_rows(two_databases: list[tuple[str, Sessions]]) -> None:
    (_, orm_sessions), (lane_url, lane_sessions) = two_databases
    first = await set_up(orm_sessions)
    assert await set_up(lane_sessions) == first
    before = datetime.now(UTC)

    by_orm = await route_story(SessionTransactionRunner(orm_sessions), first)
    async with open_transaction_runner(lane_url, lane_sessions) as runner:
        assert isinstance(runner, SqliteTransactionRunner)
        by_lane = await route_story(runner, first)

    assert shape(by_lane) == shape(by_orm)
    expected, actual = await stored(orm_sessions), await stored(lane_sessions)
    assert actual == expected
    assert {"assigned", "waiting", "closed"} <= {row[4] for row in actual["interactions"]}
    assert any(published for *_, published, _ in actual["events"])
    async with lane_sessions() as session:
        times = (await session.scalars(select(Interaction.created_at))).all()
    assert all(before <= t <= datetime.now(UTC) for t in times)


async def test_a_failing_transaction_leaves_nothing_and_the_lane_goes_on(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    sessions = create_session_factory(engine)
    source = await seed.add_source(sessions, "s")
    try:
        async with open_transaction_runner(sqlite_url, sessions) as runner:

            async def half_done(store: RoutingStore) -> None:
                row = NewLead("u-1", "someone@example.com", None, None, datetime.now(UTC))
                await store.insert_leads([row])
                raise RuntimeError("after the first write")

            with pytest.raises(RuntimeError, match="after the first write"):
                await runner.run(half_done)
            assert await seed.lead_emails(sessions) == []

            request = CreateRequest(0, CreateInteraction(email="a@example.com", source_id=source))
            outcome = await runner.run(
                lambda store: Router(store, Random(1)).route_batch([request], [])
            )
            assert isinstance(outcome.results[0], Routed)
            assert await seed.lead_emails(sessions) == ["a@example.com"]
    finally:
        await engine.dispose()


def test_work_that_would_suspend_is_refused_not_half_run() -> None:
    async def suspends() -> None:
        import asyncio

        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="suspended"):
        run_to_completion(suspends())


def test_a_locked_sqlite_database_is_retried_a_broken_statement_is_not() -> None:
    assert is_transient(sqlite3.OperationalError("database is locked"))
    assert is_transient(sqlite3.IntegrityError("UNIQUE constraint failed: interactions.message_id"))
    assert not is_transient(sqlite3.OperationalError("no such table: interactions"))
    assert not is_transient(sqlite3.IntegrityError("CHECK constraint failed: status_known"))


def test_sqlite_errors_wrapped_by_sqlalchemy_are_classified_the_same() -> None:
    """The API's SQLite sessions raise the same driver errors inside SQLAlchemy's wrappers."""
    locked, bad = sqlite3.OperationalError("database is locked"), sqlite3.OperationalError("no")
    raced = sqlite3.IntegrityError(
        "UNIQUE constraint failed: lead_contacts.kind, lead_contacts.value"
    )
    assert is_transient(sa_exc.OperationalError("BEGIN", {}, locked))
    assert is_transient(sa_exc.IntegrityError("INSERT", {}, raced))
    assert not is_transient(sa_exc.OperationalError("SELECT", {}, bad))


def test_inserts_stay_within_a_small_limit_on_bound_variables(sqlite_url: str) -> None:
    """SQLite before 3.32 binds at most 999 variables; a batch's INSERT must split to fit."""
    connection = sqlite3.connect(make_url(sqlite_url).database or "", isolation_level=None)
    connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 43)  # 3 rows of 14 columns
    now = datetime.now(UTC)
    rows = [
        NewInteraction(
            "u",
            1,
            None,
            InteractionStatus.WAITING,
            True,
            {"n": n},
            f"m-{n}",
            None,
            None,
            now,
            None,
            0,
            None,
        )
        for n in range(37)
    ]
    try:
        store = sqlite_store(connection, CompiledStatements())
        ids = run_to_completion(store.insert_interactions(rows))
        stored = connection.execute("SELECT id, payload FROM interactions ORDER BY id").fetchall()
    finally:
        connection.close()
    assert ids == list(range(1, 38))
    assert stored == [(n + 1, json.dumps({"n": n})) for n in range(37)]


async def test_wal_checkpoints_run_beside_the_lane_not_in_its_commits(sqlite_url: str) -> None:
    """The runner's own automatic checkpoint is only a far-off net; its checkpointer copies the
    WAL into the database file, on its own connection, while the runner keeps writing."""
    engine = create_engine(sqlite_url)
    source = await seed.add_source(create_session_factory(engine), "s")
    await engine.dispose()
    runner = await SqliteTransactionRunner.open(make_url(sqlite_url).database or "")
    try:

        async def route_one(store: RoutingStore) -> tuple[RoutingOutcome, int]:
            request = CreateRequest(0, CreateInteraction(email="a@example.com", source_id=source))
            outcome = await Router(store, Random(1)).route_batch([request], [])
            assert isinstance(store, SqlRoutingStore) and isinstance(store.db, SqliteStatements)
            pragma = store.db.connection.execute("PRAGMA wal_autocheckpoint")
            return outcome, pragma.fetchone()[0]

        outcome, lane_autocheckpoint = await runner.run(route_one)
        busy, frames, checkpointed = await runner.checkpointer.checkpoint()
    finally:
        await runner.close()
    assert isinstance(outcome.results[0], Routed)
    assert lane_autocheckpoint == LANE_AUTOCHECKPOINT_PAGES
    assert (busy, checkpointed) == (0, frames) and frames > 0


async def test_the_checkpointer_runs_on_its_own_schedule(sqlite_url: str) -> None:
    checkpointer = await WalCheckpointer.start(make_url(sqlite_url).database or "", interval_s=0.01)
    try:
        await asyncio.wait_for(checkpointer.checkpointed.wait(), timeout=5)
    finally:
        await checkpointer.close()
