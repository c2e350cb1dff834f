"""Issue 4.2, broker restart: the broker drops every connection mid-stream; the worker reconnects,
re-declares its topology, and finishes with nothing lost or doubled.

The shared RabbitMQ node is never restarted (others use it): closing every connection of this
test's own vhost is what a restart looks like to a client. Just before the drop the test
deletes `interactions.dead`, as a restarted broker that lost a queue would; only the worker's
re-declaration on reconnect can bring it back (the test side uses a plain, non-robust
connection).
"""

import asyncio
import uuid

import aio_pika
import pytest
from aio_pika.abc import AbstractConnection

from messaging.topology import CLOSE_QUEUE, CREATE_QUEUE, DEAD_QUEUE, declare_topology
from tests.reliability.conftest import FleetFactory, Sessions
from tests.reliability.helpers import (
    EventLog,
    assert_every_event_published,
    assert_exactly_once,
    event_log,
    one_source,
    publish_creates,
    vhost_of,
)
from tests.support.amqp import Bot, Inbox

pytestmark = pytest.mark.slow
MESSAGES = 2000


async def rabbitmqctl(*args: str) -> None:
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl", "-q", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, (out + err).decode()


async def test_connections_dropped_mid_stream_worker_reconnects_and_finishes(
    amqp_url: str, postgres_url: str, pg_sessions: Sessions, workers: FleetFactory
) -> None:
    source, _ = await one_source(pg_sessions, [500, 500])
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    await declare_topology(channel)
    log = await event_log(channel, durable=True)
    emails = [f"c{n}@example.com" for n in range(MESSAGES)]
    message_ids = await publish_creates(channel, emails, source, uuid.uuid4().hex[:8])

    async with workers(postgres_url, prefetch_count=100, batch_size=50) as fleet:
        worker = await fleet.start("worker")
        await worker.wait_count("interaction created", 300)
        # Lost before the drop, so it is gone whenever the worker comes back: deleting it after
        # the drop raced the worker's reconnect, which can be faster than `rabbitmqctl`.
        await channel.queue_delete(DEAD_QUEUE)
        await connection.close()
        await rabbitmqctl("close_all_connections", "-p", vhost_of(amqp_url), "test")
        done_before_drop = len(worker.events("interaction created"))
        async with await reattach(amqp_url, log) as again:
            await log.wait(lambda lg: len(lg.interactions()) == MESSAGES, 60, "every interaction")
            await prove_redeclared(again)
            await assert_every_event_published(pg_sessions, log, within=10)
        assert worker.returncode is None, worker.output()

    assert done_before_drop < MESSAGES - 500, "the drop came too late to be mid-stream"
    await assert_exactly_once(pg_sessions, message_ids)


async def reattach(amqp_url: str, log: EventLog) -> AbstractConnection:
    """Read the events queue again, on a connection of the test's own."""
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    for name in (CREATE_QUEUE, CLOSE_QUEUE):  # durable quorum queues: they kept their messages
        await channel.declare_queue(name, passive=True)
    assert log.queue_name is not None
    await log.consume(await channel.get_queue(log.queue_name))
    return connection


async def prove_redeclared(connection: AbstractConnection) -> None:
    """A bad message after the reconnect lands in `interactions.dead`: the worker re-declared it."""
    channel = await connection.channel()
    dead = await Inbox(await channel.declare_queue(DEAD_QUEUE, passive=True)).start()
    await Bot(channel).raw("interaction.create", b"not json after the reconnect")
    letter = await dead.next(within=20)
    assert "body is not JSON" in letter.headers["x-error"]
