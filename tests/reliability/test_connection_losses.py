"""Issue 21: a lost connection never costs a valid message.

The worker reaches the broker through a TCP proxy (tests/support/tcp_proxy.py), which resets
one of its connections at a time, as a network cut would. Resetting the *consuming* connection
again and again while a burst is in flight returns every delivery in flight each time, and
RabbitMQ 3.x counts one more delivery against each: many commands come back past
DELIVERY_LIMIT. They are processed alone and assigned, never dead-lettered, by the worker or by
the broker. Resetting the *publishing* connection returns nothing: the batches whose publishes
failed send their events again and ack.
"""

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import structlog
from aio_pika.abc import AbstractChannel
from prometheus_client import Counter as PromCounter
from sqlalchemy import func, select

from db.models import Interaction
from messaging.connection_loss import CAUSES
from messaging.topology import BROKER_DELIVERY_LIMIT, DEAD_QUEUE, declare_topology
from schemas.settings import Settings
from tests.conftest import running_worker
from tests.reliability.conftest import Sessions
from tests.reliability.helpers import (
    EventLog,
    assert_every_event_published,
    assert_exactly_once,
    event_log,
    one_source,
    publish_creates,
)
from tests.support.processes import until
from tests.support.tcp_proxy import TcpProxy
from worker.app import Worker
from worker.pipeline import is_held

pytestmark = pytest.mark.slow
MESSAGES = 3000
LOSSES = 25  # more than the worker's old limit (5) and than the broker's old one (20)


@pytest.fixture
async def proxy(amqp_url: str) -> AsyncIterator[TcpProxy]:
    opened = await TcpProxy("127.0.0.1", urlsplit(amqp_url).port or 5672).open()
    yield opened
    await opened.cut()


def through(proxy: TcpProxy, settings: Settings, **changes: Any) -> Settings:
    parts = urlsplit(settings.amqp_url)
    netloc = f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}"
    url = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return settings.model_copy(update={"amqp_url": url, "batch_size": 10, **changes})


def samples(counter: PromCounter) -> dict[tuple[str, ...], float]:
    return {
        tuple(s.labels.values()): s.value
        for metric in counter.collect()
        for s in metric.samples
        if s.name.endswith("_total")
    }


async def burst(channel: AbstractChannel, sessions: Sessions) -> tuple[list[str], EventLog]:
    await declare_topology(channel)
    log = await event_log(channel)
    source, _ = await one_source(sessions, [MESSAGES])
    emails = [f"c{n}@example.com" for n in range(MESSAGES)]
    return await publish_creates(channel, emails, source, uuid.uuid4().hex[:8]), log


async def lose(proxy: TcpProxy, link: int, worker: Worker) -> None:
    """Once `link` is up and the worker holds deliveries that came on it, reset it."""

    def holding() -> bool:
        return len(proxy.links) > link and any(is_held(d) for d in list(worker.buffer._queue))  # type: ignore[attr-defined]

    await until(holding, within=60, every=0.005, what=f"deliveries on link {link}")
    proxy.reset(link)


async def progress(log: EventLog, count: int) -> None:
    before = len(log.interactions())
    await log.wait(lambda lg: len(lg.interactions()) >= before + count, 60, "progress")


async def lose_publish(proxy: TcpProxy, link: int) -> None:
    await until(lambda: len(proxy.links) > link, within=60, what=f"link {link}")
    proxy.reset(link)


async def dead_letter_count(channel: AbstractChannel) -> int:
    queue = await channel.declare_queue(DEAD_QUEUE, passive=True)
    return int(queue.declaration_result.message_count or 0)


async def assigned(sessions: Sessions) -> int:
    query = select(func.count()).select_from(Interaction).where(Interaction.status == "assigned")
    async with sessions() as session:
        return int(await session.scalar(query) or 0)


async def test_consuming_connection_lost_again_and_again_mid_burst_costs_no_message(
    settings: Settings,
    sessions: Sessions,
    proxy: TcpProxy,
    channel: AbstractChannel,
) -> None:
    message_ids, log = await burst(channel, sessions)
    with structlog.testing.capture_logs() as logged:
        async with running_worker(through(proxy, settings), sessions) as worker:
            for loss in range(LOSSES):
                # The consuming connection: the first link, then each reconnect's new one.
                await lose(proxy, 0 if loss == 0 else loss + 1, worker)
            done_at_last_loss = len(log.interactions())
            await log.wait(lambda lg: len(lg.interactions()) == MESSAGES, 240, "every interaction")
            await assert_every_event_published(sessions, log, within=20)
            lost = samples(worker.metrics.connection_lost)
            dead_lettered = samples(worker.metrics.dead_lettered)

    alone = [x for x in logged if x["event"] == "redelivery processed alone"]
    counts = Counter(int(x["delivery_count"]) for x in alone)
    print(
        f"\n{LOSSES} losses; processed alone, by x-delivery-count: {dict(sorted(counts.items()))}"
    )
    assert done_at_last_loss < MESSAGES, "the last loss came after the burst"
    # One each, the publishing one untouched. A reset while the connection still restores its
    # channels surfaces as aio-pika's bare `Exception` rather than the socket's (then `other`).
    assert {which for which, _ in lost} == {"consume"} and sum(lost.values()) == LOSSES
    assert ("consume", "network") in lost
    lines = [x for x in logged if x["event"] == "broker connection lost"]
    assert len(lines) == LOSSES  # one line each, with the connection, cause and error
    assert all(x["connection"] == "consume" and x["cause"] in CAUSES and x["error"] for x in lines)
    assert alone and min(counts) >= settings.delivery_limit  # each one dead-lettered before
    assert max(counts) < BROKER_DELIVERY_LIMIT
    assert dead_lettered == {}
    assert await dead_letter_count(channel) == 0
    assert await assigned(sessions) == MESSAGES
    await assert_exactly_once(sessions, message_ids)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_publishing_connection_lost_mid_burst_returns_no_delivery(
    settings: Settings,
    sessions: Sessions,
    proxy: TcpProxy,
    channel: AbstractChannel,
) -> None:
    message_ids, log = await burst(channel, sessions)
    losses = 5
    with structlog.testing.capture_logs() as logged:
        async with running_worker(through(proxy, settings), sessions) as worker:
            for loss in range(losses):
                # The publishing connection: the second link, then each reconnect's new one.
                await progress(log, 300)
                await lose_publish(proxy, 1 if loss == 0 else loss + 1)
            await log.wait(lambda lg: len(lg.interactions()) == MESSAGES, 240, "every interaction")
            await assert_every_event_published(sessions, log, within=20)
            lost = samples(worker.metrics.connection_lost)
            retried = worker.metrics.publishes_retried._value.get()

    created = [x for x in logged if x["event"] == "interaction created"]
    events = Counter(x["event"] for x in logged)
    assert lost == {("publish", "network"): losses}
    assert retried > 0  # batches in flight at a loss sent their events again
    # Nothing came back from the broker: each command processed once, none a replay.
    assert len(created) == MESSAGES and not [x for x in created if x["replayed"]]
    assert events["batch not completed; returning it to the queue"] == 0
    assert events["redelivery processed alone"] == 0
    assert await dead_letter_count(channel) == 0
    await assert_exactly_once(sessions, message_ids)
