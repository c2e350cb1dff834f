"""`interactions.dead` never drops a letter because of a delivery limit, on the broker at hand.

`dlq list` returns what it shows, and each return counts in `x-delivery-count` (3.10 counts a
closed channel as well as a nack). The queue's arguments depend on the broker's version
(`messaging/topology.py::dead_queue_arguments`); the second test keeps the reason for that in
sight: `x-delivery-limit: -1` is "no limit" on RabbitMQ 4 and "drop at the first return" on 3.x.
"""

import asyncio
import uuid

import aio_pika
from aio_pika.abc import AbstractChannel

from cli import dead_letters
from messaging.topology import broker_major_version, broker_version
from tests.support.amqp import dead_letter_inbox

LISTINGS = 25  # more than RabbitMQ 4's default limit of 20


async def test_listing_the_dead_letters_again_and_again_keeps_them(
    amqp_url: str, channel: AbstractChannel
) -> None:
    dlx = await channel.get_exchange("interactions.dlx")
    letter = aio_pika.Message(b'{"x": 1}', message_id="kept", headers={"x-error": "test"})
    await dlx.publish(letter, routing_key="interaction.create")
    for _ in range(LISTINGS):
        total, [shown] = await dead_letters.peek(amqp_url, limit=10)
        assert (total, shown.message_id) == (1, "kept")
    kept = await (await dead_letter_inbox(channel)).next()
    assert kept.message.message_id == "kept"
    if broker_major_version(await broker_version(channel)) < 4:
        assert kept.headers["x-delivery-count"] >= LISTINGS  # every listing was a return


async def test_minus_one_is_no_limit_on_rabbitmq_4_only(channel: AbstractChannel) -> None:
    major = broker_major_version(await broker_version(channel))
    queue = await channel.declare_queue(
        f"test.limit.{uuid.uuid4().hex[:6]}",
        durable=True,
        arguments={"x-queue-type": "quorum", "x-delivery-limit": -1},
    )
    try:
        await channel.default_exchange.publish(aio_pika.Message(b"x"), routing_key=queue.name)
        first = await until_got(queue)
        assert first is not None
        await first.nack(requeue=True)
        again = await until_got(queue)
        if major >= 4:
            assert again is not None, "-1 should mean no limit on RabbitMQ 4"
        else:
            assert again is None, f"RabbitMQ {major}.x kept it: -1 no longer drops at once"
    finally:
        await queue.delete(if_unused=False, if_empty=False)


async def until_got(
    queue: aio_pika.abc.AbstractQueue,
) -> aio_pika.abc.AbstractIncomingMessage | None:
    """A message from the queue within 2 s, or None (a quorum queue answers `get` a little late)."""
    for _ in range(40):
        message = await queue.get(no_ack=False, fail=False)
        if message is not None:
            return message
        await asyncio.sleep(0.05)
    return None
