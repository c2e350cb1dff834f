"""Issue 21, reply_to: no value a publisher writes there costs the worker a connection.

A `reply_to` the worker must not or cannot publish to (its own queues, a malformed name, a form
the broker refuses) is ignored, logged and counted, and the command is processed as usual. A
reply the broker refuses anyway costs only that reply: replies have a connection of their own,
and the outbox relay never sends one again.
"""

import asyncio
import base64
import contextlib
import struct
from collections.abc import Iterable
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from prometheus_client import Counter
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import OutboxEvent
from messaging import lenient_strings
from messaging.reply_to import ReplyToRefusal, reply_to_refusal
from schemas.settings import Settings
from tests.conftest import running_worker
from tests.support import seed
from tests.support.amqp import Bot, Inbox, Received
from worker.app import Worker

Sessions = async_sessionmaker[AsyncSession]
FORGED = "amq.rabbitmq.reply-to.g2AAAAAAAAAAAAAAAAAAAAAAAA==.AAAA"  # issue 21's row
BURST = 2000


@pytest.fixture(autouse=True)
def lenient_amqp_strings() -> None:
    lenient_strings.install()


def samples(counter: Counter) -> dict[tuple[str, ...], float]:
    """A labelled counter's values by label values (only the series that exist)."""
    return {
        tuple(s.labels.values()): s.value
        for metric in counter.collect()
        for s in metric.samples
        if s.name.endswith("_total")
    }


def well_formed_pid_of_no_node() -> str:
    """A direct reply-to name that passes every check the worker can make (a pid term on a node
    `reply@<digits>`) but names no node of this broker: RabbitMQ closes the connection (541)."""
    node = b"reply@1"
    term = (
        bytes([131, 88, 118]) + struct.pack(">H", len(node)) + node + struct.pack(">III", 1, 0, 1)
    )
    return f"amq.rabbitmq.reply-to.{base64.b64encode(term).decode()}.key"


async def broker_closes_connection_on(amqp_url: str, name: str) -> bool:
    """Publish one message to `name` through the default exchange on a throwaway connection."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        with contextlib.suppress(Exception):
            await channel.default_exchange.publish(aio_pika.Message(b"x"), name, mandatory=False)
        # The confirm of a later publish arrives only after the broker handled the first.
        try:
            probe = await channel.declare_queue(exclusive=True)
            await channel.default_exchange.publish(aio_pika.Message(b"y"), probe.name)
        except Exception:
            return True
        return connection.is_closed or channel.is_closed
    finally:
        if not connection.is_closed:
            await connection.close()


async def configured(sessions: Sessions, capacity: int = 100) -> int:
    source = await seed.add_source(sessions, "web")
    operator = await seed.add_operator(sessions, "Bob", capacity)
    await seed.set_weights(sessions, source, {operator: 10})
    return source


def watch_reconnects(worker: Worker) -> list[str]:
    reconnects: list[str] = []
    for name, connection in (
        ("consume", worker.connection),
        ("publish", worker.publish_connection),
    ):
        assert isinstance(connection, AbstractRobustConnection)
        connection.reconnect_callbacks.add(lambda *_, n=name: reconnects.append(n))
    return reconnects


REFUSES = ReplyToRefusal.BROKER_WOULD_REFUSE
REFUSED_FORMS = {
    "forged-direct-reply-to": (FORGED, REFUSES),
    "direct-reply-to-not-base64": ("amq.rabbitmq.reply-to.!!!.x", REFUSES),
    "direct-reply-to-no-pid": ("amq.rabbitmq.reply-to.abc.def", REFUSES),
    "reserved-namespace": ("amq.foo", ReplyToRefusal.MALFORMED),
    "control-character": ("q\x01", ReplyToRefusal.MALFORMED),
    "padded": (" q ", ReplyToRefusal.MALFORMED),
    "operators-presence": ("operators.presence", ReplyToRefusal.OWN_QUEUE),
    "interactions-create": ("interactions.create", ReplyToRefusal.OWN_QUEUE),
}  # fmt: skip


async def test_the_forms_the_worker_refuses_are_the_ones_this_broker_refuses(
    amqp_url: str,
) -> None:
    """Measured against the broker the tests run on: each name the check calls
    `broker_would_refuse` closes the connection; the genuine forms do not; the well-formed pid
    of no node passes the check yet is refused (the reason replies have their own connection)."""
    for name in ("amq.rabbitmq.reply-to.!!!.x", "amq.rabbitmq.reply-to.abc.def", FORGED):
        assert reply_to_refusal(name) is ReplyToRefusal.BROKER_WOULD_REFUSE
        assert await broker_closes_connection_on(amqp_url, name), name
    for name in ("amq.foo", "no-such-queue", "amq.rabbitmq.reply-to.garbage"):
        assert not await broker_closes_connection_on(amqp_url, name), name
    unknown_node = well_formed_pid_of_no_node()
    assert reply_to_refusal(unknown_node) is None
    assert await broker_closes_connection_on(amqp_url, unknown_node)


@pytest.mark.parametrize("form", list(REFUSED_FORMS))
async def test_a_reply_to_that_cannot_be_used_is_ignored_counted_and_the_command_processed(
    form: str,
    settings: Settings,
    sessions: Sessions,
    channel: AbstractChannel,
    bot: Bot,
    events: Inbox,
    dead_letters: Inbox,
) -> None:
    name, why = REFUSED_FORMS[form]
    source = await configured(sessions)
    async with running_worker(settings, sessions) as worker:
        reconnects = watch_reconnects(worker)
        await bot.create("before@example.com", source, message_id="before")
        await bot.create("hostile@example.com", source, message_id="hostile", reply_to=name)
        await bot.create("after@example.com", source, message_id="after")
        routed = await events.take(3)
        ignored = samples(worker.metrics.reply_to_ignored)
        lost = samples(worker.metrics.connection_lost)
        failed = samples(worker.metrics.replies_failed)
    assert sorted(e.body["message_id"] for e in routed) == ["after", "before", "hostile"]
    assert {e.body["status"] for e in routed} == {"assigned"}
    assert ignored == {(why.value,): 1.0}
    assert lost == {} and failed == {} and reconnects == []
    assert dead_letters.pending() == 0
    async with sessions() as session:
        stored = (await session.scalars(select(OutboxEvent.reply_to))).all()
    assert stored == [None, None, None]  # never stored, so never sent


async def test_a_reply_the_broker_refuses_costs_only_that_reply_and_is_never_retried(
    settings: Settings,
    sessions: Sessions,
    channel: AbstractChannel,
    bot: Bot,
    events: Inbox,
    dead_letters: Inbox,
) -> None:
    source = await configured(sessions)
    replies = await Inbox(await channel.declare_queue(exclusive=True)).start()
    async with running_worker(settings, sessions) as worker:
        reconnects = watch_reconnects(worker)
        assert worker.replies is not None
        refused = asyncio.Event()
        counted = worker.replies.on_failed
        worker.replies.on_failed = lambda cause: (counted(cause), refused.set())  # type: ignore[func-returns-value]
        await bot.create("refused@example.com", source, reply_to=well_formed_pid_of_no_node())
        first = await events.next()
        await asyncio.wait_for(refused.wait(), 10)
        # The reply connection is opened again for the next reply; nothing else moved.
        await bot.create(
            "next@example.com", source, reply_to=replies.queue.name, correlation_id="c"
        )
        second = await events.next()
        reply = await replies.next()
        await bot.create("last@example.com", source)
        await events.next()
        failed = samples(worker.metrics.replies_failed)
        lost = samples(worker.metrics.connection_lost)
    assert first.body["status"] == second.body["status"] == "assigned"
    assert reply.message.correlation_id == "c"
    assert failed == {("internal_error",): 1.0}
    assert lost == {("reply", "internal_error"): 1.0}  # not "consume", not "publish"
    assert reconnects == []
    assert dead_letters.pending() == 0 and events.pending() == 0
    async with sessions() as session:
        rows = (await session.scalars(select(OutboxEvent))).all()
    assert all(row.published_at is not None for row in rows)  # the relay has nothing to retry


async def test_an_outbox_row_with_a_forged_reply_to_is_relayed_without_its_reply(
    settings: Settings,
    sessions: Sessions,
    channel: AbstractChannel,
    bot: Bot,
    events: Inbox,
) -> None:
    """A row an older release stored (its reply_to unchecked, its publish never confirmed):
    the relay publishes the event once, without a reply copy, and marks it; no reconnect loop."""
    source = await configured(sessions)
    async with running_worker(settings, sessions):
        await bot.create("old@example.com", source)
        event = await events.next()
    async with sessions() as session, session.begin():
        await session.execute(update(OutboxEvent).values(published_at=None, reply_to=FORGED))
    async with running_worker(settings, sessions) as worker:
        relayed = await events.next()
        await bot.create("new@example.com", source)
        after = await events.next()
        lost = samples(worker.metrics.connection_lost)
    assert relayed.message.message_id == event.message.message_id
    assert after.body["status"] == "assigned"
    assert lost == {}
    async with sessions() as session:
        rows = (await session.scalars(select(OutboxEvent))).all()
    assert all(row.published_at is not None for row in rows)


async def test_forged_reply_to_inside_a_burst_of_valid_creates(
    settings: Settings,
    sessions: Sessions,
    channel: AbstractChannel,
    bot: Bot,
    events: Inbox,
    dead_letters: Inbox,
) -> None:
    """Issue 21's first row: the forged direct reply-to spread through a burst of valid creates.
    Before, each one closed the worker's connection (541), returning every delivery in flight."""
    source = await configured(sessions, capacity=BURST + 10)
    forged_at = set(range(0, BURST, BURST // 5))
    exchange = await channel.get_exchange("interactions")
    await publish_burst(exchange, source, forged_at)
    async with running_worker(settings, sessions) as worker:
        reconnects = watch_reconnects(worker)
        routed = await distinct_events(events, BURST, within=180)
        ignored = samples(worker.metrics.reply_to_ignored)
        lost = samples(worker.metrics.connection_lost)
    assert {e.body["status"] for e in routed} == {"assigned"}
    assert ignored == {(ReplyToRefusal.BROKER_WOULD_REFUSE.value,): float(len(forged_at))}
    assert lost == {} and reconnects == []
    assert dead_letters.pending() == 0
    assert len(await seed.interactions(sessions)) == BURST


async def distinct_events(events: Inbox, count: int, within: float) -> list[Received]:
    """The first copy of each event until `count` distinct ones came (a re-sent copy, with the
    same event_id, is allowed by the contract)."""
    first: dict[str, Received] = {}
    async with asyncio.timeout(within):
        while len(first) < count:
            event = await events.next(within=within)
            first.setdefault(event.body["event_id"], event)
    return list(first.values())


async def publish_burst(exchange: Any, source: int, forged_at: Iterable[int]) -> None:
    forged = set(forged_at)
    pending = []
    for n in range(BURST):
        body = f'{{"email": "c{n}@example.com", "source_id": {source}}}'.encode()
        extra = {"reply_to": FORGED, "correlation_id": f"c{n}"} if n in forged else {}
        message = aio_pika.Message(
            body, message_id=f"burst-{n}", content_type="application/json", **extra
        )
        pending.append(exchange.publish(message, "interaction.create"))
        if len(pending) >= 500:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
