"""Is this worker able to do its job right now: connected to the broker and the database?

Used by the worker's `/health`, which orchestrators poll to decide whether to route traffic or
restart; so it checks the live connection, not just that the process is up.
"""

import asyncio
from dataclasses import dataclass
from typing import Protocol

from aio_pika.abc import AbstractRobustConnection
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.health import database_answers
from messaging.connection_health import is_connected


class BrokerState(Protocol):
    """What the probe reads of a worker (`worker.app.Worker` has both)."""

    ready: asyncio.Event
    connection: AbstractRobustConnection | None  # consuming
    publish_connection: AbstractRobustConnection | None


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
        broker = (
            self.broker.ready.is_set()
            and is_connected(self.broker.connection)
            and is_connected(self.broker.publish_connection)
        )
        return Readiness(database=await database_answers(self.session_factory), broker=broker)
