"""Dead letters on `interactions.dead`: look at them, count them, move them back.

A replay republishes each dead letter to the `interactions` exchange with its original routing
key and properties (minus the dead-letter bookkeeping headers), waits for the broker's confirm,
and only then acks the dead letter: a crash in between leaves a duplicate at worst, never a loss,
and the duplicate is harmless because the worker is idempotent by `message_id`.
"""

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from aio_pika.exceptions import ChannelNotFoundEntity, DeliveryError

from messaging import lenient_strings, nodes
from messaging.dead_letter import (
    EXCHANGE_HEADER,
    ROUTING_KEY_HEADER,
    SHORT_STRINGS,
    alteration,
    original_property_header,
)
from messaging.message_copy import copy_with_headers
from messaging.topology import (
    ACCEPT_ROUTING_KEY,
    CLOSE_ROUTING_KEY,
    COMMANDS_EXCHANGE,
    CREATE_ROUTING_KEY,
    DEAD_QUEUE,
)

# Added by the worker or the broker when dead-lettering; a replayed message starts clean
# (a stale x-delivery-count would make the worker treat it as poison straight away).
BOOKKEEPING_HEADERS = frozenset(
    {"x-error", ROUTING_KEY_HEADER, EXCHANGE_HEADER, "x-delivery-count", "x-death"}
)
# The contract's commands on `interactions`: a replay sends nothing else, whatever a letter's
# header says (a letter is publisher-controlled text, and `interactions` is a topic exchange).
COMMAND_ROUTING_KEYS = (
    CREATE_ROUTING_KEY,
    CLOSE_ROUTING_KEY,
    ACCEPT_ROUTING_KEY,
    "operator.presence",
)
BOOKKEEPING_PREFIXES = ("x-first-death-", "x-last-death-")


class TopologyMissing(RuntimeError):
    """The vhost has no `interactions.dead` yet: no worker has ever started there."""


@dataclass(frozen=True)
class DeadLetter:
    message_id: str | None
    routing_key: str
    error: str
    body: bytes
    # The bytes of each property the letter shows escaped (`x-original-<property>`), by name.
    originals: dict[str, bytes] = field(default_factory=dict)


@dataclass
class ReplayReport:
    replayed: int = 0
    failed: list[str] = field(default_factory=list)


def describe(message: AbstractIncomingMessage) -> DeadLetter:
    """For a terminal: a property that is not UTF-8 shows its bytes as `\xff`."""
    headers = dict(message.headers or {})
    originals = {
        name: bytes(value)
        for name in SHORT_STRINGS
        if isinstance(value := headers.get(original_property_header(name)), bytes | bytearray)
    }
    return DeadLetter(
        lenient_strings.printable(message.message_id) if message.message_id else None,
        original_routing_key(message),
        str(headers.get("x-error", "")),
        message.body,
        originals,
    )


def original_routing_key(message: AbstractIncomingMessage) -> str:
    """The worker records it in a header; the broker's own dead-lettering keeps the key as is."""
    recorded = (message.headers or {}).get(ROUTING_KEY_HEADER)
    return str(recorded) if recorded else message.routing_key or ""


def replayable(message: AbstractIncomingMessage) -> aio_pika.Message:
    """The original message again: same body and properties, bookkeeping headers removed."""
    headers: dict[str, Any] = {
        k: v
        for k, v in (message.headers or {}).items()
        if k not in BOOKKEEPING_HEADERS and not k.startswith(BOOKKEEPING_PREFIXES)
    }
    return copy_with_headers(message, headers)


def unprocessable(message: AbstractIncomingMessage) -> str | None:
    """Why a letter must stay: it is no longer its original (a property escaped, a header
    dropped), or, from before letters were escaped, its properties are not UTF-8; or its
    routing key is not one of the contract's commands."""
    headers = message.headers or {}
    if (altered := alteration(dict(headers))) is not None:
        return f"{altered}; replaying it would not send the original: fix the publisher"
    properties = lenient_strings.short_string_properties(message)
    if (not_utf8 := lenient_strings.invalid_utf8_property(properties, headers)) is not None:
        return f"{not_utf8}; fix the publisher"
    if (key := original_routing_key(message)) not in COMMAND_ROUTING_KEYS:
        shown = lenient_strings.printable(key)
        return f"routing key {shown!r} is not a command ({', '.join(COMMAND_ROUTING_KEYS)})"
    return None


@contextlib.asynccontextmanager
async def dead_queue(amqp_url: str) -> AsyncIterator[tuple[AbstractChannel, AbstractQueue]]:
    """A confirming channel (unroutable publishes raise) and the dead-letter queue, passively."""
    lenient_strings.install()
    connection = await nodes.connect(amqp_url)  # the first node of AMQP_URL that answers
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        try:
            queue = await channel.declare_queue(DEAD_QUEUE, passive=True)
        except ChannelNotFoundEntity as exc:
            raise TopologyMissing(
                f"no queue {DEAD_QUEUE} on this vhost: start `leadrouter worker` once to declare it"
            ) from exc
        yield channel, queue


async def count(amqp_url: str) -> int:
    async with dead_queue(amqp_url) as (_, queue):
        return int(queue.declaration_result.message_count or 0)


async def peek(amqp_url: str, limit: int) -> tuple[int, list[DeadLetter]]:
    """Total in the queue and the first `limit` of them, all returned to the queue unchanged.

    Held unacked while reading (so `get` moves on to the next one) and returned by closing the
    channel rather than by nack: RabbitMQ 4 counts a nack-requeue towards a quorum queue's
    delivery limit. On 3.10 a closed channel counts as well (measured), so what keeps listed
    letters is that `interactions.dead` has no delivery limit at all
    (`messaging/topology.py::dead_queue_arguments`). A quorum queue redelivers returned
    messages first, so a partial listing can change the order in which a later replay takes
    them; nothing is lost or altered.
    """
    async with dead_queue(amqp_url) as (_, queue):
        total = int(queue.declaration_result.message_count or 0)
        held: list[AbstractIncomingMessage] = []
        while len(held) < min(total, limit):
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            held.append(message)
        letters = [describe(m) for m in held]
    return total, letters  # leaving the block closes the channel: `held` goes back


async def replay(amqp_url: str, limit: int) -> ReplayReport:
    """Move up to `limit` dead letters back in queue order; unroutable ones stay dead."""
    report = ReplayReport()
    async with dead_queue(amqp_url) as (channel, queue):
        exchange = await channel.get_exchange(COMMANDS_EXCHANGE)
        kept: list[AbstractIncomingMessage] = []
        for _ in range(limit):
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            letter = describe(message)
            if (why := unprocessable(message)) is not None:
                report.failed.append(f"{letter.message_id}: {why}")
                kept.append(message)
                continue
            try:
                routing_key = original_routing_key(message)
                await exchange.publish(replayable(message), routing_key, mandatory=True)
            except DeliveryError as exc:
                report.failed.append(f"{letter.message_id}: {routing_key!r} not routed ({exc})")
                kept.append(message)  # held unacked so `get` does not return it again
                continue
            await message.ack()
            report.replayed += 1
    return report  # closing the channel returns the kept ones (see `peek`)
