"""The contract's AMQP topology, declared idempotently by every worker at start (and on reconnect).

Work queues are quorum queues: durable, replicated in a cluster, and they count deliveries
(`x-delivery-count`), which is how a message that kills the worker every time is recognised.
"""

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aio_pika import ExchangeType
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue
from aiormq.exceptions import ChannelPreconditionFailed

COMMANDS_EXCHANGE = "interactions"
EVENTS_EXCHANGE = "interactions.events"
DEAD_LETTER_EXCHANGE = "interactions.dlx"
CREATE_QUEUE = "interactions.create"
CLOSE_QUEUE = "interactions.close"
DEAD_QUEUE = "interactions.dead"
CREATE_ROUTING_KEY = "interaction.create"
CLOSE_ROUTING_KEY = "interaction.close"

# The broker's own safety net; the worker dead-letters with a reason well before this.
BROKER_DELIVERY_LIMIT = 20

WORK_QUEUE_ARGUMENTS: dict[str, Any] = {
    "x-queue-type": "quorum",
    "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
    "x-delivery-limit": BROKER_DELIVERY_LIMIT,
}
DEAD_QUEUE_ARGUMENTS: dict[str, Any] = {"x-queue-type": "quorum"}


SERVICE_QUEUE_PREFIX = "interactions"


def is_own_queue(name: str) -> bool:
    """`interactions` and `interactions.*` are this service's names (the contract's rule)."""
    return name == SERVICE_QUEUE_PREFIX or name.startswith(SERVICE_QUEUE_PREFIX + ".")


@dataclass(frozen=True)
class Topology:
    commands: AbstractExchange
    events: AbstractExchange
    dead_letters: AbstractExchange
    create_queue: AbstractQueue
    close_queue: AbstractQueue
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
    commands = await _exchange(channel, COMMANDS_EXCHANGE, ExchangeType.TOPIC)
    events = await _exchange(channel, EVENTS_EXCHANGE, ExchangeType.TOPIC)
    dlx = await _exchange(channel, DEAD_LETTER_EXCHANGE, ExchangeType.FANOUT)
    async with _declaring("queue", DEAD_QUEUE):
        dead = await channel.declare_queue(DEAD_QUEUE, durable=True, arguments=DEAD_QUEUE_ARGUMENTS)
    await dead.bind(dlx)
    create = await _work_queue(channel, CREATE_QUEUE, commands, CREATE_ROUTING_KEY)
    close = await _work_queue(channel, CLOSE_QUEUE, commands, CLOSE_ROUTING_KEY)
    return Topology(commands, events, dlx, create, close, dead)


async def _work_queue(
    channel: AbstractChannel, name: str, exchange: AbstractExchange, routing_key: str
) -> AbstractQueue:
    async with _declaring("queue", name):
        queue = await channel.declare_queue(name, durable=True, arguments=WORK_QUEUE_ARGUMENTS)
    await queue.bind(exchange, routing_key)
    return queue


async def _exchange(channel: AbstractChannel, name: str, kind: ExchangeType) -> AbstractExchange:
    async with _declaring("exchange", name):
        return await channel.declare_exchange(name, kind, durable=True)
