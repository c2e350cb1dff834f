"""Issue 4.6 and issue 21, poison messages: a delivery count is not evidence.

The test plays a consumer that dies holding the message (closes its channel without an ack),
DELIVERY_LIMIT times; the quorum queue counts each return in `x-delivery-count`, as it counts
every connection lost with the message in flight. The real worker then processes it alone, in
a batch of its own, and it is assigned like any other: only a failure of its own would refuse
it. A message no worker can take at all ends at the broker's own limit (`x-delivery-limit`),
shown separately.
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


async def test_a_message_returned_past_the_limit_is_processed_alone_not_dead_lettered(
    sqlite_url: str,
    sqlite_sessions: Sessions,
    workers: FleetFactory,
    amqp_connection: AbstractRobustConnection,
    bot: Bot,
    events: Inbox,
    dead_letters: Inbox,
) -> None:
    source, _ = await one_source(sqlite_sessions, [5])
    returned = await bot.create("returned@example.com", source)
    await die_holding_it(amqp_connection, DELIVERY_LIMIT)
    async with workers(sqlite_url, delivery_limit=DELIVERY_LIMIT) as fleet:
        worker = await fleet.start("worker")
        event = await events.next(within=20)
        healthy = await bot.create("healthy@example.com", source)
        second = await events.next(within=20)

    (alone,) = worker.events("redelivery processed alone")
    assert alone["message_id"] == returned and alone["delivery_count"] == DELIVERY_LIMIT
    assert event.body["message_id"] == returned and event.body["status"] == "assigned"
    assert second.body["message_id"] == healthy
    assert dead_letters.pending() == 0
    assert await interaction_count(sqlite_sessions) == 2


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
