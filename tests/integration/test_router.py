"""The router inside one transaction, on SQLite and PostgreSQL: cases a broker cannot pin down
(what several commands in the same batch do to each other)."""

from collections.abc import AsyncIterator
from random import Random

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.messages import CloseInteraction, CreateInteraction
from tests.support import seed
from worker.commands import CloseRequest, CreateRequest, Envelope, Routed, RoutingOutcome
from worker.lane import RoutingLane, SessionLane, open_lane
from worker.routing import Router
from worker.sqlite_lane import SqliteLane

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture(params=["session-lane", "sqlite-lane"])
async def lane(
    request: pytest.FixtureRequest, database_url: str, sessions: Sessions
) -> AsyncIterator[RoutingLane]:
    """Every case runs through SQLAlchemy and, on SQLite, through the worker's sqlite3 lane."""
    if request.param == "session-lane":
        yield SessionLane(sessions)
    elif not database_url.startswith("sqlite"):
        pytest.skip("the sqlite3 lane is for SQLite")
    else:
        async with open_lane(database_url, sessions) as sqlite_lane:
            assert isinstance(sqlite_lane, SqliteLane)
            yield sqlite_lane


async def route(
    lane: RoutingLane, creates: list[CreateRequest], closes: list[CloseRequest]
) -> RoutingOutcome:
    return await lane.run(lambda store: Router(store, Random(3)).route_batch(creates, closes))


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
    sessions: Sessions, lane: RoutingLane
) -> None:
    """The drain after the first close must not give the slot to the interaction the same
    batch is closing: it stays closed and the operator ends with nothing assigned."""
    source = await seed.add_source(sessions, "s")
    operator = await seed.add_operator(sessions, "o", load_limit=1)
    await seed.set_weights(sessions, source, {operator: 10})
    first = await route(
        lane, [create(0, "a@example.com", source), create(1, "b@example.com", source)], []
    )
    assigned, waiting = routed(first, 0), routed(first, 1)
    assert (assigned.status, waiting.status) == ("assigned", "waiting")

    second = await route(
        lane, [], [close(0, assigned.interaction_id), close(1, waiting.interaction_id)]
    )

    assert [e.routing_key for e in second.events] == ["interaction.closed"] * 2
    assert {r.status for r in await seed.interactions(sessions)} == {"closed"}
    assert (await seed.operators(sessions))[operator].current_load == 0
    assert await seed.assigned_counts(sessions) == {}


async def test_a_close_frees_the_slot_for_a_create_in_the_same_batch_after_older_waiting(
    sessions: Sessions, lane: RoutingLane
) -> None:
    source = await seed.add_source(sessions, "s")
    operator = await seed.add_operator(sessions, "o", load_limit=1)
    await seed.set_weights(sessions, source, {operator: 10})
    first = await route(
        lane, [create(0, "a@example.com", source), create(1, "b@example.com", source)], []
    )

    second = await route(
        lane, [create(5, "c@example.com", source)], [close(0, routed(first, 0).interaction_id)]
    )

    # The older waiting interaction takes the freed slot before the new one.
    keys = [e.routing_key for e in second.events]
    assert keys == ["interaction.closed", "interaction.assigned", "interaction.waiting"]
    assert routed(second, 5).status == "waiting"
    rows = {r.id: r for r in await seed.interactions(sessions)}
    assert rows[routed(first, 1).interaction_id].status == "assigned"
    assert (await seed.operators(sessions))[operator].current_load == 1
