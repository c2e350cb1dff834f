"""Confirmed, persistent publishing of events, replies and dead letters."""

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from aio_pika import DeliveryMode, Message
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage

from worker.commands import PendingEvent
from worker.message_copy import copy_with_headers


class EventPublisher:
    """Publishes on a channel with publisher confirms: `await` returns once the broker has it."""

    def __init__(
        self, channel: AbstractChannel, events: AbstractExchange, dead_letters: AbstractExchange
    ) -> None:
        self.channel = channel
        self.events = events
        self.dead_letters = dead_letters

    async def publish_events(self, events: Sequence[PendingEvent]) -> None:
        """All in flight at once (one round trip for the batch), sent in order."""
        await asyncio.gather(*(self.publish_event(event) for event in events))

    async def publish_event(self, event: PendingEvent) -> None:
        message = Message(
            event.body.encode(),
            content_type="application/json",
            delivery_mode=DeliveryMode.PERSISTENT,
            message_id=event.event_id,
            correlation_id=event.correlation_id,
            type=event.routing_key,
            timestamp=datetime.now(UTC),
        )
        # mandatory=False: an event nobody subscribes to yet is not an error of the worker.
        await self.events.publish(message, routing_key=event.routing_key, mandatory=False)
        if event.reply_to:
            await self.channel.default_exchange.publish(
                message, routing_key=event.reply_to, mandatory=False
            )

    async def dead_letter(self, original: AbstractIncomingMessage, reason: str) -> None:
        """The original body and properties, plus `x-error` saying why, to interactions.dead."""
        headers = dict(original.headers or {})
        headers["x-error"] = reason
        headers["x-original-routing-key"] = original.routing_key or ""
        headers["x-original-exchange"] = original.exchange or ""
        message = copy_with_headers(original, headers)
        await self.dead_letters.publish(message, routing_key=original.routing_key or "")
