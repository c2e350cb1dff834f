"""One async engine and session factory per process, built from `DATABASE_URL` at start-up."""

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SQLITE_BUSY_TIMEOUT_MS = 5000
# asyncpg prepares every statement, and PostgreSQL switches a prepared statement to a generic
# plan after five runs. A generic plan made while `interactions` was small keeps scanning as
# it grows (a fresh database routed slower than one holding a million rows); custom plans
# cost a little planning per run and stay right. The measurements are in bench/README.md.
POSTGRES_SERVER_SETTINGS = {"plan_cache_mode": "force_custom_plan"}
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
    # Fewer, larger WAL checkpoints (each one syncs the database file) and a 64 MB page
    # cache: the worker writes a few rows per message, all day long.
    "PRAGMA wal_autocheckpoint=10000",
    "PRAGMA cache_size=-65536",
)
SQLITE_BEGIN = "sqlite_begin"  # execution option: "DEFERRED" for a read-only unit of work


def create_engine(database_url: str, **kwargs: Any) -> AsyncEngine:
    """Build the engine; SQLite gets WAL, foreign keys, a busy timeout and BEGIN IMMEDIATE."""
    if database_url.startswith("sqlite"):
        engine = create_async_engine(database_url, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("connect_args", {"server_settings": POSTGRES_SERVER_SETTINGS})
    return create_async_engine(database_url, **kwargs)


def _configure_sqlite(engine: AsyncEngine) -> None:
    """Every transaction takes the write lock up front (BEGIN IMMEDIATE).

    The routing transaction reads operator loads and then writes them; with a deferred BEGIN a
    second writer could read the same loads in between. IMMEDIATE serialises writers, which is what
    keeps the load limit exact on SQLite, and WAL keeps readers from blocking on it.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(SQLITE_BEGIN, "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {mode}")


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def begin_read_only(session: AsyncSession) -> None:
    """Start `session` as a reader: on SQLite a deferred BEGIN, so it does not take the write
    lock that routing transactions queue for; elsewhere nothing changes."""
    await session.connection(execution_options={SQLITE_BEGIN: "DEFERRED"})


def create_read_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for read-only units of work that manage their own `session.begin()`: the
    same pool, but on SQLite their BEGIN is deferred (no write lock)."""
    return async_sessionmaker(
        engine.execution_options(**{SQLITE_BEGIN: "DEFERRED"}), expire_on_commit=False
    )
