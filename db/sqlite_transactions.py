"""SQLite routing transactions on one thread of their own, one hand-off per batch.

Through SQLAlchemy and aiosqlite every statement of a batch costs a hop to aiosqlite's thread
and back, plus SQLAlchemy's per-row work on the event loop's thread; with about a dozen
statements per batch that was most of the worker's database time, and each hop waited behind
whatever the busy event loop had queued. Here the router's coroutine runs to completion on the
runner's thread (its statements, compiled once when the runner opens, run on `sqlite3`
directly and never suspend), so a batch is one hand-off.
WAL checkpoints are not the runner's: its `WalCheckpointer` runs them beside it.
"""

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from db.routing_store.sqlite import CompiledStatements, sqlite_store
from db.session import SQLITE_PRAGMAS
from db.wal_checkpointer import LANE_AUTOCHECKPOINT_PAGES, WalCheckpointer
from routing.store import RoutingStore

T = TypeVar("T")


class SqliteTransactionRunner:
    """A connection that only its thread touches; transactions begin IMMEDIATE, as the
    engine's do, so the write lock is held from the first read of the operators' loads."""

    def __init__(
        self,
        executor: ThreadPoolExecutor,
        connection: sqlite3.Connection,
        checkpointer: WalCheckpointer,
        statements: CompiledStatements,
    ) -> None:
        self._executor = executor
        self._connection = connection
        self.checkpointer = checkpointer
        self._statements = statements

    @classmethod
    async def open(cls, path: str) -> "SqliteTransactionRunner":
        """The runner's connection, and the checkpointer that keeps WAL checkpoints off it."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-transactions")
        loop = asyncio.get_running_loop()
        try:
            connection = await loop.run_in_executor(executor, _connect, path)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        try:
            checkpointer = await WalCheckpointer.start(path)
        except BaseException:
            await loop.run_in_executor(executor, connection.close)
            executor.shutdown(wait=False)
            raise
        return cls(executor, connection, checkpointer, CompiledStatements())

    async def run(self, work: Callable[[RoutingStore], Awaitable[T]]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._transaction, work)

    async def close(self) -> None:
        await self.checkpointer.close()
        await asyncio.get_running_loop().run_in_executor(self._executor, self._connection.close)
        self._executor.shutdown(wait=True)

    def _transaction(self, work: Callable[[RoutingStore], Awaitable[T]]) -> T:
        return run_transaction(self._connection, self._statements, work)


def run_transaction(
    connection: sqlite3.Connection,
    statements: CompiledStatements,
    work: Callable[[RoutingStore], Awaitable[T]],
) -> T:
    """`work` in one transaction on this thread: committed if it returns, rolled back if it
    raises (or suspends)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        result = run_to_completion(work(sqlite_store(connection, statements)))
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    return result


def run_to_completion(awaitable: Awaitable[T]) -> T:
    """Drive a coroutine that never suspends, without an event loop.

    This is the seam between the async router and the synchronous sqlite3 lane: the router's
    store methods are coroutines so that PostgreSQL's can wait on the network, and here they
    must finish without waiting on anything. Work that suspends (a store method that really
    awaits) cannot go on without a loop: it is stopped and refused, loudly, before anything
    commits. `tests/unit/test_router_on_sqlite.py` runs every router case through this seam.
    """
    coroutine: Coroutine[Any, Any, T] = awaitable  # type: ignore[assignment]
    try:
        awaited = coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise SuspendedInSqliteLane(
        f"routing work suspended in the sqlite3 runner, awaiting {awaited!r}: on SQLite the "
        "store's statements run synchronously and must not await anything that suspends"
    )


class SuspendedInSqliteLane(RuntimeError):
    """A routing transaction on the SQLite lane awaited something that suspends."""


class SqliteRunnerUnavailable(Exception):
    """This SQLite library lacks what the runner's statements use (its JSON functions)."""


def _connect(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in SQLITE_PRAGMAS:
        connection.execute(pragma)
    # Checkpoints are the checkpointer's; this is only the net should it fall behind.
    connection.execute(f"PRAGMA wal_autocheckpoint={LANE_AUTOCHECKPOINT_PAGES}")
    try:
        connection.execute("SELECT json_group_array(json_array(value)) FROM json_each('[1]')")
    except sqlite3.OperationalError as exc:  # built without JSON1 (before 3.38 it was optional)
        connection.close()
        raise SqliteRunnerUnavailable(str(exc)) from exc
    return connection
