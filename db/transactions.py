"""Where a batch's routing transaction runs: the `TransactionRunner` the batch processor is given.

`SessionTransactionRunner` runs it on the event loop through SQLAlchemy (any database). On
SQLite the worker uses `SqliteTransactionRunner` (`db/sqlite_transactions.py`) instead;
`open_transaction_runner` picks one at start-up.
"""

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol, TypeVar

import structlog
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.routing_store.sessions import session_store
from db.sqlite_transactions import SqliteRunnerUnavailable, SqliteTransactionRunner
from routing.store import RoutingStore

T = TypeVar("T")
log = structlog.get_logger(__name__)
Work = Callable[[RoutingStore], Awaitable[T]]


class TransactionRunner(Protocol):
    async def run(self, work: Work[T]) -> T:
        """`work` in one transaction: committed if it returns, rolled back if it raises."""
        ...


class SessionTransactionRunner:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self.session_factory = session_factory

    async def run(self, work: Work[T]) -> T:
        async with self.session_factory() as session, session.begin():
            return await work(session_store(session))


@contextlib.asynccontextmanager
async def open_transaction_runner(
    database_url: str, session_factory: async_sessionmaker[AsyncSession]
) -> AsyncIterator[TransactionRunner]:
    """A file-backed SQLite database gets its own thread and connection; anything else goes
    through the sessions."""
    runner = await _sqlite_runner(database_url)
    if runner is None:
        yield SessionTransactionRunner(session_factory)
        return
    try:
        yield runner
    finally:
        await runner.close()


async def _sqlite_runner(database_url: str) -> SqliteTransactionRunner | None:
    """None for other databases, for an in-memory SQLite (a second connection would not see
    it) and for a SQLite library without the JSON functions the runner's statements use."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    try:
        return await SqliteTransactionRunner.open(url.database)
    except SqliteRunnerUnavailable as exc:
        log.warning(
            "routing through SQLAlchemy: this SQLite cannot run the sqlite3 transaction runner",
            reason=str(exc),
        )
        return None
