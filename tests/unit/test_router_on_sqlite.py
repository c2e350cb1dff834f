"""The router's cases on the SQLite lane's store, in memory and through the lane's own seam
(`run_transaction` drives each transaction with `run_to_completion`, without an event loop),
and that seam refusing work that suspends. The same cases run on the in-memory double
(`test_router.py`) and on database files and PostgreSQL (`tests/integration/test_router.py`)."""

import asyncio
from collections.abc import Iterator, Sequence
from random import Random
from typing import Any

import pytest

from db.routing_store.sqlite import CompiledStatements, SqliteStatements
from db.routing_store.store import SqlRoutingStore
from db.sqlite_transactions import SuspendedInSqliteLane, run_to_completion
from db.statements.statement import Statement
from routing.router import Router
from routing.store import RoutingStore
from tests.support.router_cases import CASES, Case, case_id, create
from tests.support.sqlite_world import SqliteWorld

STATEMENTS = CompiledStatements()  # once, as the runner compiles them once at start-up


@pytest.fixture
def world() -> Iterator[SqliteWorld]:
    world = SqliteWorld(STATEMENTS)
    yield world
    world.close()


@pytest.mark.parametrize("case", CASES, ids=case_id)
async def test_router(case: Case, world: SqliteWorld) -> None:
    await case(world)


class SuspendingStatements(SqliteStatements):
    """The lane's statements, but a read that really awaits (what the seam must refuse)."""

    async def rows(self, statement: Statement, params: Sequence[Any]) -> list[list[Any]]:
        await asyncio.sleep(0)
        return await super().rows(statement, params)


async def test_a_store_call_that_suspends_fails_loudly_and_leaves_nothing(
    world: SqliteWorld,
) -> None:
    source = await world.add_source("s")
    operator = await world.add_operator("o", 1)
    await world.set_weights(source, {operator: 10})

    async def route(store: RoutingStore) -> object:
        assert isinstance(store, SqlRoutingStore)
        suspending = SqlRoutingStore(SuspendingStatements(world.db, world.statements))
        request = create(0, "a@example.com", source)
        return await Router(suspending, Random(1)).route_batch([request], [])

    with pytest.raises(SuspendedInSqliteLane, match="suspended in the sqlite3 runner"):
        await world.run(route)
    assert await world.interactions() == [] and await world.loads() == {operator: 0}
    assert not world.db.in_transaction


def test_run_to_completion_returns_what_work_that_never_suspends_returns() -> None:
    async def immediate() -> int:
        return 7

    assert run_to_completion(immediate()) == 7
