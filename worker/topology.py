"""The contract's AMQP topology, declared idempotently by every worker at start (and on reconnect).

Work queues are quorum queues: durable, replicated in a cluster, and they count deliveries
(`x-delivery-count`), which is how a message that kills the worker every time is recognised.
"""

from dataclasses import dataclass
from typing import Any

from aio_pika import ExchangeType
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

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


@dataclass(frozen=True)
class Topology:
    commands: AbstractExchange
    events: AbstractExchange
    dead_letters: AbstractExchange
    create_queue: AbstractQueue
    close_queue: AbstractQueue
    dead_queue: AbstractQueue


async def declare_topology(channel: AbstractChannel) -> Topology:
    """Declare exchanges, queues and bindings; safe to run any number of times."""
    commands = await channel.declare_exchange(COMMANDS_EXCHANGE, ExchangeType.TOPIC, durable=True)
    events = await channel.declare_exchange(EVENTS_EXCHANGE, ExchangeType.TOPIC, durable=True)
    dlx = await channel.declare_exchange(DEAD_LETTER_EXCHANGE, ExchangeType.FANOUT, durable=True)
    dead = await channel.declare_queue(DEAD_QUEUE, durable=True, arguments=DEAD_QUEUE_ARGUMENTS)
    await dead.bind(dlx)
    create = await _work_queue(channel, CREATE_QUEUE, commands, CREATE_ROUTING_KEY)
    close = await _work_queue(channel, CLOSE_QUEUE, commands, CLOSE_ROUTING_KEY)
    return Topology(commands, events, dlx, create, close, dead)


async def _work_queue(
    channel: AbstractChannel, name: str, exchange: AbstractExchange, routing_key: str
) -> AbstractQueue:
    queue = await channel.declare_queue(name, durable=True, arguments=WORK_QUEUE_ARGUMENTS)
    await queue.bind(exchange, routing_key)
    return queue
