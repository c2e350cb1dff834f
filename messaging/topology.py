"""The contract's AMQP topology, declared idempotently by every worker at start (and on reconnect).

Work queues and `interactions.dead` are quorum queues: durable, replicated over a cluster (three
replicas), and they count deliveries (`x-delivery-count`), which is how a message that kills
the worker every time is recognised.
"""

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from aio_pika import ExchangeType
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue
from aiormq.exceptions import ChannelPreconditionFailed

COMMANDS_EXCHANGE = "interactions"
EVENTS_EXCHANGE = "interactions.events"
DEAD_LETTER_EXCHANGE = "interactions.dlx"
CREATE_QUEUE = "interactions.create"
CLOSE_QUEUE = "interactions.close"
ACCEPT_QUEUE = "interactions.accept"
DEAD_QUEUE = "interactions.dead"
CREATE_ROUTING_KEY = "interaction.create"
CLOSE_ROUTING_KEY = "interaction.close"
ACCEPT_ROUTING_KEY = "interaction.accept"

# The broker's own safety net, for a message no worker can take at all (one that kills the
# process, or the connection, whenever it is delivered). On 3.x every return counts, a
# connection lost with the message unacked included, so the limit is far above what lost
# connections add up to for a valid message, which the worker processes whatever its count
# (worker/parse.py::is_suspect). Queues declared by an older release keep theirs (20): the
# worker redeclares them as they are and says how to move (`work_queue_arguments`).
BROKER_DELIVERY_LIMIT = 100
LEGACY_DELIVERY_LIMIT = 20
# Replicas per quorum queue: on a 3-node cluster every node holds every queue, and losing one
# node loses nothing. It is RabbitMQ's own default (3.x and 4.x), written down so that a
# broker-wide `quorum_cluster_size` cannot change it under a deployment. Compared on redeclare.
QUORUM_GROUP_SIZE = 3
# `x-delivery-limit: -1` is "no limit" on RabbitMQ 4 only: 3.10 takes it as "dead-letter on the
# first return" (measured: one nack or closed channel and the message was gone).
UNLIMITED_DELIVERIES = -1
log = structlog.get_logger(__name__)

WORK_QUEUE_ARGUMENTS: dict[str, Any] = {
    "x-queue-type": "quorum",
    "x-quorum-initial-group-size": QUORUM_GROUP_SIZE,
    "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
    "x-delivery-limit": BROKER_DELIVERY_LIMIT,
}
LEGACY_WORK_QUEUE_ARGUMENTS: dict[str, Any] = {
    **WORK_QUEUE_ARGUMENTS,
    "x-delivery-limit": LEGACY_DELIVERY_LIMIT,
}


def dead_queue_arguments(broker_version: str | bytes | None) -> dict[str, Any]:
    """`interactions.dead` must keep a letter however often it is returned (`dlq list` returns
    what it shows, and each return counts on 3.10). 3.x has no limit unless one is set; 4.x
    sets 20 unless told `-1`. An unknown version gets 3.x's arguments: a limit of 20 is the
    lesser harm than a `-1` that drops at the first return."""
    arguments: dict[str, Any] = {
        "x-queue-type": "quorum",
        "x-quorum-initial-group-size": QUORUM_GROUP_SIZE,
    }
    if broker_major_version(broker_version) >= 4:
        arguments["x-delivery-limit"] = UNLIMITED_DELIVERIES
    return arguments


def broker_major_version(version: str | bytes | None) -> int:
    """3 for "3.10.8"; 0 when the broker did not say (or said something else)."""
    text = version.decode(errors="replace") if isinstance(version, bytes) else version or ""
    match = re.match(r"\s*(\d+)\.", text)
    return int(match.group(1)) if match else 0


async def broker_version(channel: AbstractChannel) -> str | bytes | None:
    """The `version` the connected node announced when the connection opened."""
    underlay = await channel.get_underlay_channel()
    version = underlay.connection.server_properties.get("version")
    return version if isinstance(version, str | bytes) else None


@dataclass(frozen=True)
class Exchange:
    """An exchange of the contract as data: what `declare_exchange` declares (durable, not
    auto-deleted) and what the AsyncAPI document describes, from this one place."""

    name: str
    kind: ExchangeType


COMMANDS = Exchange(COMMANDS_EXCHANGE, ExchangeType.TOPIC)
EVENTS = Exchange(EVENTS_EXCHANGE, ExchangeType.TOPIC)
DEAD_LETTERS = Exchange(DEAD_LETTER_EXCHANGE, ExchangeType.FANOUT)


@dataclass(frozen=True)
class Topology:
    commands: AbstractExchange
    events: AbstractExchange
    dead_letters: AbstractExchange
    create_queue: AbstractQueue
    close_queue: AbstractQueue
    accept_queue: AbstractQueue
    dead_queue: AbstractQueue


class TopologyConflict(RuntimeError):
    """A queue or exchange exists with other settings than the contract's; the broker refuses
    to redeclare it. The message is one line: what, how it differs, how to fix it."""


_BROKER_DETAIL = re.compile(r"PRECONDITION_FAILED - (?P<detail>.*)")


@asynccontextmanager
async def _declaring(kind: str, name: str) -> AsyncIterator[None]:
    try:
        yield
    except ChannelPreconditionFailed as exc:
        text = str(exc.args[0] if exc.args else exc)
        match = _BROKER_DETAIL.search(text)
        detail = (match.group("detail") if match else text).strip().rstrip(".")
        raise TopologyConflict(
            f"{kind} {name} already exists with other settings ({detail}); "
            f"delete it after moving its messages (rabbitmqctl delete_{kind} {name}), "
            "or use another vhost in AMQP_URL"
        ) from None


async def declare_topology(channel: AbstractChannel) -> Topology:
    """Declare exchanges, queues and bindings; safe to run any number of times.

    Raises `TopologyConflict` when something exists with other settings.
    """
    commands = await declare_exchange(channel, COMMANDS)
    events = await declare_exchange(channel, EVENTS)
    dlx = await declare_exchange(channel, DEAD_LETTERS)
    dead_arguments = dead_queue_arguments(await broker_version(channel))
    async with _declaring("queue", DEAD_QUEUE):
        dead = await channel.declare_queue(DEAD_QUEUE, durable=True, arguments=dead_arguments)
    await dead.bind(dlx)
    create = await _work_queue(channel, CREATE_QUEUE, commands, CREATE_ROUTING_KEY)
    close = await _work_queue(channel, CLOSE_QUEUE, commands, CLOSE_ROUTING_KEY)
    accept = await _work_queue(channel, ACCEPT_QUEUE, commands, ACCEPT_ROUTING_KEY)
    return Topology(commands, events, dlx, create, close, accept, dead)


async def _work_queue(
    channel: AbstractChannel, name: str, exchange: AbstractExchange, routing_key: str
) -> AbstractQueue:
    arguments = await work_queue_arguments(channel, name)
    async with _declaring("queue", name):
        queue = await channel.declare_queue(name, durable=True, arguments=arguments)
    await queue.bind(exchange, routing_key)
    return queue


async def work_queue_arguments(channel: AbstractChannel, name: str) -> dict[str, Any]:
    """Today's arguments, or an older release's when the queue exists with those.

    A quorum queue's `x-delivery-limit` cannot change once declared (PRECONDITION_FAILED), and
    a policy cannot raise it (the broker takes the lower of the two). So a queue an older
    release made keeps its limit of 20, with one warning line; moving to 100 means recreating
    the queue (docs/reliability.md, "Delivery counts"). Each try runs on a channel of its own:
    a refused declaration closes its channel.
    """
    connection = (await channel.get_underlay_channel()).connection
    for arguments in (WORK_QUEUE_ARGUMENTS, LEGACY_WORK_QUEUE_ARGUMENTS):
        probe = await connection.channel()
        try:
            await probe.queue_declare(name, durable=True, arguments=arguments)
        except ChannelPreconditionFailed:
            continue
        finally:
            if not probe.is_closed:
                await probe.close()
        if arguments is LEGACY_WORK_QUEUE_ARGUMENTS:
            log.warning(
                "queue declared by an older release with x-delivery-limit 20; kept as it is. "
                "Recreate it to raise the broker's limit to 100 (docs/reliability.md)",
                queue=name,
            )
        return arguments
    return WORK_QUEUE_ARGUMENTS  # neither: the declaration raises TopologyConflict with why


async def declare_exchange(channel: AbstractChannel, exchange: Exchange) -> AbstractExchange:
    """Idempotent; `TopologyConflict` when it exists with another type or durability."""
    async with _declaring("exchange", exchange.name):
        return await channel.declare_exchange(exchange.name, exchange.kind, durable=True)


async def restore_dead_letter_queue(on: AbstractChannel) -> None:
    """Declare `interactions.dead` and its binding again (deleted by hand, by a policy, by a
    restore), as `declare_topology` does at start. On a channel of its own (on the connection
    of `on`): if the broker refuses (a queue of that name with other settings), only that
    channel closes."""
    connection = (await on.get_underlay_channel()).connection
    channel = await connection.channel()
    try:
        await channel.exchange_declare(
            DEAD_LETTERS.name, exchange_type=DEAD_LETTERS.kind.value, durable=True
        )
        version = connection.server_properties.get("version")
        arguments = dead_queue_arguments(version if isinstance(version, str | bytes) else None)
        await channel.queue_declare(DEAD_QUEUE, durable=True, arguments=arguments)
        await channel.queue_bind(DEAD_QUEUE, DEAD_LETTER_EXCHANGE)
    finally:
        if not channel.is_closed:
            await channel.close()
