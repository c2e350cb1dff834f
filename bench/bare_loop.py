"""The bare client loop: consume -> publish with confirms -> ack, batched, no database.

The ceiling runs it over pre-published messages; the latency stage's floor runs it as a
process of its own (`python -m bench.bare_loop`) in the worker's place, fed like the worker.
It publishes the way the worker does (`publish_confirmed`, AMQP properties built directly),
so the comparison is like for like.
"""

import asyncio
import os
import sys
from collections.abc import Callable

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from cli import event_loop
from messaging.publisher import event_properties, publish_confirmed
from messaging.topology import CREATE_QUEUE, EVENTS_EXCHANGE
from schemas.settings import Settings

EVENT_KEY = "interaction.assigned"
STARTED_LINE = '"worker started"'  # what `bench.pipeline.worker_process` waits for


async def bare_loop(
    connection: AbstractRobustConnection,
    batch_size: int,
    prefetch: int,
    on_ready: Callable[[], None] = lambda: None,
) -> None:
    """Forever: take what is buffered (up to `batch_size`), publish each message's event with
    its `correlation_id` and `message_id`, await every confirm, ack the batch with one frame."""
    consume = await connection.channel()
    await consume.set_qos(prefetch_count=prefetch)
    publish = await connection.channel(publisher_confirms=True)
    buffer: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
    await (await consume.get_queue(CREATE_QUEUE)).consume(buffer.put)
    on_ready()
    while True:
        batch = [await buffer.get()]
        while len(batch) < batch_size and not buffer.empty():
            batch.append(buffer.get_nowait())
        await asyncio.gather(*(_publish_event(publish, message) for message in batch))
        await batch[-1].ack(multiple=True)  # one frame per batch, as the worker acks


async def _publish_event(
    channel: aio_pika.abc.AbstractChannel, message: AbstractIncomingMessage
) -> None:
    properties = event_properties(message.message_id, message.correlation_id, EVENT_KEY)
    await publish_confirmed(channel, EVENTS_EXCHANGE, EVENT_KEY, message.body, properties)


async def _serve() -> None:
    settings = Settings()
    connection = await aio_pika.connect_robust(os.environ.get("AMQP_URL", settings.amqp_url))
    async with connection:
        await bare_loop(
            connection,
            settings.batch_size,
            settings.prefetch_count,
            on_ready=lambda: print(STARTED_LINE, file=sys.stderr, flush=True),
        )


if __name__ == "__main__":
    event_loop.run(_serve())
