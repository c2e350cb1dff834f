"""Is this worker able to do its job right now: connected to the broker and the database?

Used by the worker's `/health`, which orchestrators poll to decide whether to route traffic or
restart; so it checks the live connection, not just that the process is up.
"""

import asyncio
from dataclasses import dataclass
from typing import Protocol

from aio_pika.abc import AbstractRobustConnection
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.session import begin_read_only

DATABASE_TIMEOUT_S = 5.0


class BrokerState(Protocol):
    """What the probe reads of a worker (`worker.app.Worker` has both)."""

    ready: asyncio.Event
    connection: AbstractRobustConnection | None


@dataclass(frozen=True)
class Readiness:
    database: bool
    broker: bool

    @property
    def ok(self) -> bool:
        return self.database and self.broker

    def as_dict(self) -> dict[str, str]:
        return {
            "status": "ok" if self.ok else "down",
            "database": "ok" if self.database else "down",
            "broker": "ok" if self.broker else "down",
        }


class ReadinessProbe:
    def __init__(
        self, broker: BrokerState, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        self.broker = broker
        self.session_factory = session_factory

    async def check(self) -> Readiness:
        return Readiness(database=await self._database_ok(), broker=self._broker_ok())

    def _broker_ok(self) -> bool:
        """Ready (topology declared, consuming) and not in the middle of a reconnect."""
        connection = self.broker.connection
        return (
            self.broker.ready.is_set()
            and connection is not None
            and not connection.is_closed
            and connection.connected.is_set()
        )

    async def _database_ok(self) -> bool:
        try:
            async with asyncio.timeout(DATABASE_TIMEOUT_S), self.session_factory() as session:
                await begin_read_only(session)
                await session.execute(text("SELECT 1"))
            return True
        except Exception:
            return False
