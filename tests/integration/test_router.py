"""The router's cases (`tests/support/router_cases.py`) on real databases: SQLite through
SQLAlchemy's sessions and through the worker's sqlite3 runner, and PostgreSQL. The same cases
run on the in-memory store in `tests/unit/test_router.py`."""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.session import create_engine, create_session_factory
from db.sqlite_transactions import SqliteTransactionRunner
from db.transactions import SessionTransactionRunner, TransactionRunner, open_transaction_runner
from routing.store import RoutingStore
from tests.support import seed
from tests.support.router_cases import CASES, Case, Row, case_id

T = TypeVar("T")
Sessions = async_sessionmaker[AsyncSession]


class DatabaseWorld:
    """A database as a `World`: routing through `runner`, set-up and inspection through the
    ORM, the way the API would see it."""

    def __init__(self, sessions: Sessions, runner: TransactionRunner) -> None:
        self.sessions = sessions
        self.runner = runner

    async def run(self, work: Callable[[RoutingStore], Awaitable[T]]) -> T:
        return await self.runner.run(work)

    async def add_source(
        self,
        identifier: str,
        sticky: bool = False,
        max_wait_s: int | None = None,
        accept_timeout_s: int | None = None,
    ) -> int:
        return await seed.add_source(
            self.sessions,
            identifier,
            sticky=sticky,
            max_wait_s=max_wait_s,
            accept_timeout_s=accept_timeout_s,
        )

    async def add_operator(self, name: str, load_limit: int, active: bool = True) -> int:
        return await seed.add_operator(self.sessions, name, load_limit, active)

    async def set_weights(self, source_id: int, weights: dict[int, int]) -> None:
        await seed.set_weights(self.sessions, source_id, weights)

    async def interactions(self) -> list[Row]:
        return [
            Row(i.id, i.status, i.operator_id, i.is_active)
            for i in await seed.interactions(self.sessions)
        ]

    async def loads(self) -> dict[int, int]:
        return {i: o.current_load for i, o in (await seed.operators(self.sessions)).items()}

    async def leads(self) -> dict[str, set[tuple[str, str]]]:
        return await seed.lead_contacts(self.sessions)

    async def lead_of(self) -> dict[int, str]:
        return {i.id: i.lead_uuid for i in await seed.interactions(self.sessions)}


@pytest.fixture(params=["sqlite-sessions", "sqlite-runner", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> tuple[str, str]:
    """The kind and its fresh database's URL (PostgreSQL is skipped without a server)."""
    kind = str(request.param)
    database = "postgres_url" if kind == "postgres" else "sqlite_url"
    return kind, str(request.getfixturevalue(database))


@pytest.fixture
async def world(store_kind: tuple[str, str]) -> AsyncIterator[DatabaseWorld]:
    kind, url = store_kind
    engine = create_engine(url)
    sessions = create_session_factory(engine)
    try:
        if kind == "sqlite-runner":
            async with open_transaction_runner(url, sessions) as runner:
                assert isinstance(runner, SqliteTransactionRunner)
                yield DatabaseWorld(sessions, runner)
        else:
            yield DatabaseWorld(sessions, SessionTransactionRunner(sessions))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("case", CASES, ids=case_id)
async def test_router(case: Case, world: DatabaseWorld) -> None:
    await case(world)
