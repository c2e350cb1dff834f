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

import structlog
from aio_pika import DeliveryMode, Message
from aio_pika.abc import AbstractChannel, AbstractRobustChannel, AbstractRobustConnection

from api.replies import ReplyInbox
from messaging import nodes
from messaging.connect_failures import advice
from messaging.connection_health import is_connected
from messaging.publisher import EventPublisher
from messaging.topology import Topology, declare_topology
from routing.outcomes import PendingEvent

log = structlog.get_logger(__name__)
PUBLISH_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 5.0
INSPECT_TIMEOUT_S = 2.0


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
        self._inspect_channel: AbstractRobustChannel | None = None
        self._inspect_lock = asyncio.Lock()
        self.replies = ReplyInbox()

    def start(self) -> None:
        self._task = asyncio.create_task(self._connect_until_up(), name="api-broker-connect")

    async def _connect_until_up(self) -> None:
        """Keep trying; once up, the robust connection handles later reconnects, node to node."""
        said = ""
        while True:
            try:
                self._link = await self._connect()
            except Exception as exc:
                # Said once per kind of trouble, not every retry_s: a wrong password stays wrong.
                if isinstance(exc, nodes.NoNodeAnswered) and exc.failures:
                    problem = advice(exc.failures)[1]
                else:
                    problem = repr(exc)[:300]
                if problem != said:
                    said = problem
                    log.warning(
                        f"broker unavailable, the API serves without it and retries every "
                        f"{self.retry_s:g} s",
                        error=problem,
                    )
                await asyncio.sleep(self.retry_s)
                continue
            self.connected.set()
            log.info("broker connected")
            return

    async def _connect(self) -> _Link:
        # The first node of AMQP_URL that answers; on losing it, the next (messaging/nodes.py).
        connection = await nodes.connect_robust(self.amqp_url, per_node_s=CONNECT_TIMEOUT_S)
        try:
            channel = await connection.channel(publisher_confirms=True)
            topology = await declare_topology(channel)
            await self.replies.start(connection)
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

    async def publish_command(
        self,
        routing_key: str,
        body: bytes,
        message_id: str,
        *,
        reply: bool = False,
        headers: dict[str, Any] | None = None,
    ) -> None:
        """A persistent command on the `interactions` exchange, returned once confirmed; with
        `reply`, its outcome event comes back to `replies` under `message_id`. `headers`: the
        W3C trace context it continues (`messaging.tracing.trace_headers`)."""
        link = self._live_link()
        message = Message(
            body,
            headers=headers,
            content_type="application/json",
            delivery_mode=DeliveryMode.PERSISTENT,
            message_id=message_id,
            timestamp=datetime.now(UTC),
            reply_to=self.replies.queue_name if reply else None,
            correlation_id=message_id if reply else None,
        )
        await self._confirmed(link.topology.commands.publish(message, routing_key=routing_key))

    async def message_count(self, queue_name: str) -> int | None:
        """Messages ready in a queue (the dashboard's dead letters); None while unreachable.

        A passive declare, on a channel of its own: a failed one closes the channel it ran on,
        and the publishing channel must not go with it. Not robust: aio-pika answers a repeated
        passive declare of a robust queue from its cache, with the first count.
        """
        link = self._link
        if link is None or not self.is_up:
            return None
        try:
            async with asyncio.timeout(INSPECT_TIMEOUT_S), self._inspect_lock:
                channel = self._inspect_channel
                if channel is None or channel.is_closed:
                    channel = self._inspect_channel = await link.connection.channel()
                queue = await channel.declare_queue(queue_name, passive=True, robust=False)
        except Exception as exc:
            log.debug("queue not inspected", queue=queue_name, error=repr(exc)[:300])
            return None
        count = queue.declaration_result.message_count
        return int(count) if count is not None else None

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
