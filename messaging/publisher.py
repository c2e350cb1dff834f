"""Confirmed, persistent publishing of events, replies and dead letters."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any, cast

import aiormq
import structlog
from aio_pika import DeliveryMode
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage
from aiormq import spec
from aiormq.exceptions import AMQPError, DeliveryError, PublishError

from messaging.dead_letter import bare_letter, build_letter
from messaging.lenient_strings import printable
from messaging.topology import DEAD_LETTER_EXCHANGE, DEAD_QUEUE, restore_dead_letter_queue
from messaging.tracing import trace_headers
from routing.outcomes import PendingEvent

log = structlog.get_logger(__name__)


class LetterStored(Enum):
    AT_ONCE = "at_once"
    AFTER_RESTORE = "after_restore"  # returned: the worker declared interactions.dead again


class DeadLetterNotStored(RuntimeError):
    """The broker returned the letter (no queue bound to `interactions.dlx`) or refused it,
    and declaring `interactions.dead` again did not help: the original must not be acked."""


class EventPublisher:
    """Publishes on a channel with publisher confirms: `await` returns once the broker has it."""

    def __init__(
        self, channel: AbstractChannel, events: AbstractExchange, dead_letters: AbstractExchange
    ) -> None:
        self.channel = channel
        self.events = events
        self.dead_letters = dead_letters
        # Dead letters in flight by message_id: aiormq matches a return to its publish by
        # message_id, so two letters with one id must not be in flight together.
        self._letters: dict[str, asyncio.Future[None]] = {}
        self._restoring = asyncio.Lock()

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
        if event.reply_to:
            await publish_confirmed(self.channel, "", event.reply_to, body, properties)

    async def dead_letter(self, original: AbstractIncomingMessage, reason: str) -> LetterStored:
        """The original body and properties, plus `x-error` saying why, to interactions.dead,
        readable by any client and within the frame size (`messaging.dead_letter`).

        Mandatory and confirmed: returns once the letter is in a queue. A returned letter means
        `interactions.dead` is gone or unbound: it is declared again and the letter sent once
        more; if that fails too, `DeadLetterNotStored` (the caller keeps the original)."""
        underlay = cast(aiormq.Channel, await self.channel.get_underlay_channel())
        frame_max = underlay.connection.connection_tune.frame_max
        try:
            letter = build_letter(original, reason, frame_max)
        except Exception:
            log.exception("could not build the dead letter; sending the body and reason only")
            letter = bare_letter(original, reason)
        if not letter.properties.message_id:  # as aiormq would: it matches returns by this id
            letter.properties.message_id = uuid.uuid4().hex
        routing_key = original.routing_key or ""
        async with self._one_letter_per_id(letter.properties.message_id):
            if await self._publish_letter(underlay, routing_key, letter.body, letter.properties):
                return LetterStored.AT_ONCE
            log.warning(
                f"dead letter returned: no queue is bound to {DEAD_LETTER_EXCHANGE}; "
                f"declaring {DEAD_QUEUE} again",
                message_id=printable(original.message_id or "") or None,
            )
            try:
                async with self._restoring:
                    await restore_dead_letter_queue(underlay.connection)
            except (AMQPError, ConnectionError) as exc:
                raise DeadLetterNotStored(f"could not declare {DEAD_QUEUE}: {exc}") from exc
            if await self._publish_letter(underlay, routing_key, letter.body, letter.properties):
                return LetterStored.AFTER_RESTORE
        raise DeadLetterNotStored(f"returned again after declaring {DEAD_QUEUE}")

    async def _publish_letter(
        self,
        underlay: aiormq.Channel,
        routing_key: str,
        body: bytes,
        properties: spec.Basic.Properties,
    ) -> bool:
        """True once confirmed into a queue; False when returned; a nack raises."""
        try:
            confirmation = await underlay.basic_publish(
                body,
                exchange=self.dead_letters.name,
                routing_key=routing_key,
                properties=properties,
                mandatory=True,
                wait=False,
            )
        except PublishError:  # a channel opened with on_return_raises
            return False
        except DeliveryError as exc:
            raise DeadLetterNotStored(f"the broker refused the dead letter: {exc}") from exc
        return isinstance(confirmation, spec.Basic.Ack)

    @contextlib.asynccontextmanager
    async def _one_letter_per_id(self, message_id: str) -> AsyncIterator[None]:
        previous = self._letters.get(message_id)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._letters[message_id] = done
        try:
            if previous is not None:
                await asyncio.wait([previous])
            yield
        finally:
            done.set_result(None)
            if self._letters.get(message_id) is done:
                del self._letters[message_id]


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
