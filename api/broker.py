"""The API's connection to RabbitMQ: connected in the background, so the API starts without it.

While the broker is away `/health` says `"broker": "down"`, the HTTP ingress answers 503, and
events of committed changes stay in the outbox for the worker's relay.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aio_pika
import structlog
from aio_pika import DeliveryMode, Message
from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from messaging.connection_health import is_connected
from messaging.publisher import EventPublisher
from messaging.topology import Topology, declare_topology
from routing.outcomes import PendingEvent

log = structlog.get_logger(__name__)
PUBLISH_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 5.0


class BrokerUnavailable(Exception):
    """Not connected, or the broker did not confirm in time: the app answers 503."""


@dataclass(frozen=True)
class _Link:
    connection: AbstractRobustConnection
    channel: AbstractChannel
    topology: Topology
    publisher: EventPublisher


class Broker:
    def __init__(self, amqp_url: str, retry_s: float = 2.0) -> None:
        self.amqp_url = amqp_url
        self.retry_s = retry_s
        self.connected = asyncio.Event()
        self._link: _Link | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._connect_until_up(), name="api-broker-connect")

    async def _connect_until_up(self) -> None:
        """Keep trying; once up, aio-pika's robust connection handles later reconnects."""
        while True:
            try:
                self._link = await self._connect()
            except Exception as exc:
                log.warning("broker unavailable, retrying", error=repr(exc)[:300])
                await asyncio.sleep(self.retry_s)
                continue
            self.connected.set()
            log.info("broker connected")
            return

    async def _connect(self) -> _Link:
        connection = await aio_pika.connect_robust(self.amqp_url, timeout=CONNECT_TIMEOUT_S)
        try:
            channel = await connection.channel(publisher_confirms=True)
            topology = await declare_topology(channel)
        except BaseException:
            await connection.close()
            raise
        publisher = EventPublisher(channel, topology.events, topology.dead_letters)
        return _Link(connection, channel, topology, publisher)

    @property
    def is_up(self) -> bool:
        link = self._link
        return link is not None and is_connected(link.connection, link.channel)

    def _live_link(self) -> _Link:
        if self._link is None or not self.is_up:
            raise BrokerUnavailable("message broker unavailable, try again later")
        return self._link

    async def publish_command(self, routing_key: str, body: bytes, message_id: str) -> None:
        """A persistent command on the `interactions` exchange, returned once confirmed."""
        link = self._live_link()
        message = Message(
            body,
            content_type="application/json",
            delivery_mode=DeliveryMode.PERSISTENT,
            message_id=message_id,
            timestamp=datetime.now(UTC),
        )
        await self._confirmed(link.topology.commands.publish(message, routing_key=routing_key))

    async def publish_events(self, events: Sequence[PendingEvent]) -> None:
        link = self._live_link()
        await self._confirmed(link.publisher.publish_events(events))

    @staticmethod
    async def _confirmed(publishing: Awaitable[Any]) -> None:
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                await publishing
        except Exception as exc:
            raise BrokerUnavailable(f"message broker did not confirm: {exc!r}"[:300]) from exc

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._link is not None:
            await self._link.connection.close()
        self.connected.clear()
