"""Where a batch's routing transaction runs: the `RoutingLane` the batch processor is given.

`SessionLane` runs it on the event loop through SQLAlchemy (any database). On SQLite the worker
uses `SqliteLane` (`worker/sqlite_lane.py`) instead; `open_lane` picks one at start-up.
"""

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol, TypeVar

import structlog
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.routing_store.orm import OrmRoutingStore
from db.routing_store.protocol import RoutingStore
from worker.sqlite_lane import SqliteLane, SqliteLaneUnavailable

T = TypeVar("T")
log = structlog.get_logger(__name__)
Work = Callable[[RoutingStore], Awaitable[T]]


class RoutingLane(Protocol):
    async def run(self, work: Work[T]) -> T:
        """`work` in one transaction: committed if it returns, rolled back if it raises."""
        ...


class SessionLane:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self.session_factory = session_factory

    async def run(self, work: Work[T]) -> T:
        async with self.session_factory() as session, session.begin():
            return await work(OrmRoutingStore(session))


@contextlib.asynccontextmanager
async def open_lane(
    database_url: str, session_factory: async_sessionmaker[AsyncSession]
) -> AsyncIterator[RoutingLane]:
    """A file-backed SQLite database gets its own thread and connection; anything else goes
    through the sessions."""
    lane = await _sqlite_lane(database_url)
    if lane is None:
        yield SessionLane(session_factory)
        return
    try:
        yield lane
    finally:
        await lane.close()


async def _sqlite_lane(database_url: str) -> SqliteLane | None:
    """None for other databases, for an in-memory SQLite (a second connection would not see
    it) and for a SQLite library without the JSON functions the lane's statements use."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    try:
        return await SqliteLane.open(url.database)
    except SqliteLaneUnavailable as exc:
        log.warning("routing through SQLAlchemy: this SQLite cannot run the lane", reason=str(exc))
        return None
