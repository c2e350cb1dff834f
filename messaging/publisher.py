"""Confirmed, persistent publishing of events, replies and dead letters."""

import asyncio
import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, cast

import aiormq
from aio_pika import DeliveryMode
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage
from aiormq import spec

from messaging.dead_letter_sender import DeadLetterSender, LetterStored
from messaging.tracing import trace_headers
from routing.outcomes import PendingEvent


class ReplyCopies(Protocol):
    """Where reply copies go (`messaging.replies.ReplySender`): never raises, never blocks."""

    def send(self, reply_to: str, body: bytes, properties: spec.Basic.Properties) -> None: ...


class EventPublisher:
    """Publishes on a channel with publisher confirms: `await` returns once the broker has it.

    Reply copies go to `replies`, after their event is confirmed; without it, none are sent."""

    def __init__(
        self,
        channel: AbstractChannel,
        events: AbstractExchange,
        dead_letters: AbstractExchange,
        replies: ReplyCopies | None = None,
    ) -> None:
        self.channel = channel
        self.events = events
        self.dead_letters = dead_letters
        self.replies = replies

    async def publish_events(self, events: Sequence[PendingEvent]) -> None:
        """All in flight at once (one round trip for the batch), sent in order."""
        await asyncio.gather(*(self.publish_event(event) for event in events))

    async def publish_event(self, event: PendingEvent) -> None:
        properties = event_properties(
            event.event_id,
            event.correlation_id,
            event.routing_key,
            trace_headers(event.traceparent, event.tracestate),
        )
        body = event.body.encode()
        # An event nobody subscribes to yet is not an error of the worker: mandatory=False.
        await publish_confirmed(self.channel, self.events.name, event.routing_key, body, properties)
        if event.reply_to and self.replies is not None:
            self.replies.send(event.reply_to, body, properties)

    async def dead_letter(self, original: AbstractIncomingMessage, reason: str) -> LetterStored:
        """The original, readable and within the frame size, plus `x-error` saying why, to
        interactions.dead; returns once it is in a queue (`messaging.dead_letter_sender`)."""
        return await self._letters.send(original, reason)

    @functools.cached_property
    def _letters(self) -> DeadLetterSender:
        return DeadLetterSender(self.channel, self.dead_letters)


def event_properties(
    message_id: str | None,
    correlation_id: str | None,
    routing_key: str,
    headers: dict[str, Any] | None = None,
) -> spec.Basic.Properties:
    """An event's AMQP properties, built directly: aio-pika's `Message` checks every
    attribute it is given, which cost more than the rest of an event (bench/README.md).
    `headers`: the W3C trace context it continues (`messaging.tracing.trace_headers`)."""
    return spec.Basic.Properties(
        content_type="application/json",
        delivery_mode=DeliveryMode.PERSISTENT,
        message_id=message_id,
        correlation_id=correlation_id,
        message_type=routing_key,
        timestamp=datetime.now(UTC),
        headers=headers,
    )


async def publish_confirmed(
    channel: AbstractChannel,
    exchange: str,
    routing_key: str,
    body: bytes,
    properties: spec.Basic.Properties,
) -> None:
    """Queue the frames now, then await the broker's confirm (a nack raises).

    Through the channel's AMQP layer (aiormq) with `wait=False`: aio-pika's `Exchange.publish`
    waits, holding the channel's lock, until the connection's writer task has written the
    frame, so a batch's events went out one per event-loop turn, each behind whatever else
    the busy loop had queued. Now they are all queued at once and written together. Nothing
    grows without bound: the worker's prefetch caps the events waiting for confirms.
    """
    underlay = cast(aiormq.Channel, await channel.get_underlay_channel())
    await underlay.basic_publish(
        body,
        exchange=exchange,
        routing_key=routing_key,
        properties=properties,
        mandatory=False,
        wait=False,
    )
