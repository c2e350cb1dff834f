"""Issue 4.6, poison messages: a message that kills whoever takes it is dead-lettered after a
bounded number of deliveries instead of looping for ever.

The test plays the crashing consumer: it takes the message and dies (closes its channel
without an ack), DELIVERY_LIMIT times; the quorum queue counts each return in
`x-delivery-count`. The real worker then dead-letters it with the reason and goes on.
The broker's own safety net (`x-delivery-limit` on the queue) is shown separately.
"""

import pytest
from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from messaging.topology import BROKER_DELIVERY_LIMIT, CREATE_QUEUE
from tests.reliability.conftest import FleetFactory, Sessions
from tests.reliability.helpers import interaction_count, one_source
from tests.support.amqp import Bot, Inbox

pytestmark = pytest.mark.slow
DELIVERY_LIMIT = 3


async def die_holding_it(connection: AbstractRobustConnection, times: int) -> None:
    """Take the head of interactions.create and close the channel without ack, `times` times."""
    for attempt in range(times):
        crashing = await connection.channel()
        queue = await crashing.get_queue(CREATE_QUEUE)
        message = await queue.get(timeout=10)
        assert message is not None
        assert int((message.headers or {}).get("x-delivery-count") or 0) == attempt
        await crashing.close()


async def test_message_that_crashes_every_consumer_is_dead_lettered_after_the_limit(
    sqlite_url: str,
    sqlite_sessions: Sessions,
    workers: FleetFactory,
    amqp_connection: AbstractRobustConnection,
    bot: Bot,
    events: Inbox,
    dead_letters: Inbox,
) -> None:
    source, _ = await one_source(sqlite_sessions, [5])
    poison = await bot.create("poison@example.com", source)
    await die_holding_it(amqp_connection, DELIVERY_LIMIT)
    async with workers(sqlite_url, delivery_limit=DELIVERY_LIMIT) as fleet:
        await fleet.start("worker")
        dead = await dead_letters.next(within=20)
        healthy = await bot.create("healthy@example.com", source)
        event = await events.next(within=20)

    assert dead.message.message_id == poison
    assert dead.headers["x-error"] == (
        f"delivery limit reached: delivered {DELIVERY_LIMIT + 1} times without an outcome"
    )
    assert event.body["message_id"] == healthy
    assert await interaction_count(sqlite_sessions) == 1


async def test_broker_dead_letters_by_itself_past_x_delivery_limit(
    channel: AbstractChannel, bot: Bot, dead_letters: Inbox
) -> None:
    """No worker at all: a consumer that always requeues. The quorum queue's `x-delivery-limit`
    stops the loop and dead-letters to interactions.dlx (reason `delivery_limit`)."""
    await bot.raw("interaction.create", b'{"email": "loop@example.com"}', message_id="loop")
    queue = await channel.get_queue(CREATE_QUEUE)
    returns = 0
    while (message := await queue.get(timeout=5, fail=False)) is not None:
        assert returns <= BROKER_DELIVERY_LIMIT, "the broker let it loop past its limit"
        await message.nack(requeue=True)
        returns += 1
    dead = await dead_letters.next(within=10)

    assert returns == BROKER_DELIVERY_LIMIT + 1
    assert dead.headers["x-first-death-reason"] == "delivery_limit"
    assert dead.headers["x-first-death-queue"] == CREATE_QUEUE
    assert dead.message.message_id == "loop"
    assert "x-error" not in dead.headers  # the broker's verdict, not the worker's
