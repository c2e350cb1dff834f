"""The router inside one transaction, on SQLite and PostgreSQL: cases a broker cannot pin down
(what several commands in the same batch do to each other)."""

from collections.abc import AsyncIterator
from random import Random

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.sqlite_transactions import SqliteTransactionRunner
from db.transactions import SessionTransactionRunner, TransactionRunner, open_transaction_runner
from routing.commands import CloseRequest, CreateRequest, Envelope
from routing.outcomes import Routed, RoutingOutcome
from routing.router import Router
from schemas.messages import CloseInteraction, CreateInteraction
from tests.support import seed

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture(params=["session-runner", "sqlite-runner"])
async def runner(
    request: pytest.FixtureRequest, database_url: str, sessions: Sessions
) -> AsyncIterator[TransactionRunner]:
    """Every case runs through SQLAlchemy and, on SQLite, through the worker's sqlite3 runner."""
    if request.param == "session-runner":
        yield SessionTransactionRunner(sessions)
    elif not database_url.startswith("sqlite"):
        pytest.skip("the sqlite3 runner is for SQLite")
    else:
        async with open_transaction_runner(database_url, sessions) as sqlite_lane:
            assert isinstance(sqlite_lane, SqliteTransactionRunner)
            yield sqlite_lane


async def route(
    runner: TransactionRunner, creates: list[CreateRequest], closes: list[CloseRequest]
) -> RoutingOutcome:
    return await runner.run(lambda store: Router(store, Random(3)).route_batch(creates, closes))


def create(key: int, email: str, source_id: int) -> CreateRequest:
    command = CreateInteraction(email=email, source_id=source_id)
    return CreateRequest(key, command, Envelope(f"m-{key}-{email}"))


def close(key: int, interaction_id: int) -> CloseRequest:
    return CloseRequest(key, CloseInteraction(interaction_id=interaction_id))


def routed(outcome: RoutingOutcome, key: int) -> Routed:
    result = outcome.results[key]
    assert isinstance(result, Routed)
    return result


async def test_closing_a_waiting_one_with_the_one_that_frees_the_slot(
    sessions: Sessions, runner: TransactionRunner
) -> None:
    """The drain after the first close must not give the slot to the interaction the same
    batch is closing: it stays closed and the operator ends with nothing assigned."""
    source = await seed.add_source(sessions, "s")
    operator = await seed.add_operator(sessions, "o", load_limit=1)
    await seed.set_weights(sessions, source, {operator: 10})
    first = await route(
        runner, [create(0, "a@example.com", source), create(1, "b@example.com", source)], []
    )
    assigned, waiting = routed(first, 0), routed(first, 1)
    assert (assigned.status, waiting.status) == ("assigned", "waiting")

    second = await route(
        runner, [], [close(0, assigned.interaction_id), close(1, waiting.interaction_id)]
    )

    assert [e.routing_key for e in second.events] == ["interaction.closed"] * 2
    assert {r.status for r in await seed.interactions(sessions)} == {"closed"}
    assert (await seed.operators(sessions))[operator].current_load == 0
    assert await seed.assigned_counts(sessions) == {}


async def test_a_close_frees_the_slot_for_a_create_in_the_same_batch_after_older_waiting(
    sessions: Sessions, runner: TransactionRunner
) -> None:
    source = await seed.add_source(sessions, "s")
    operator = await seed.add_operator(sessions, "o", load_limit=1)
    await seed.set_weights(sessions, source, {operator: 10})
    first = await route(
        runner, [create(0, "a@example.com", source), create(1, "b@example.com", source)], []
    )

    second = await route(
        runner, [create(5, "c@example.com", source)], [close(0, routed(first, 0).interaction_id)]
    )

    # The older waiting interaction takes the freed slot before the new one.
    keys = [e.routing_key for e in second.events]
    assert keys == ["interaction.closed", "interaction.assigned", "interaction.waiting"]
    assert routed(second, 5).status == "waiting"
    rows = {r.id: r for r in await seed.interactions(sessions)}
    assert rows[routed(first, 1).interaction_id].status == "assigned"
    assert (await seed.operators(sessions))[operator].current_load == 1
