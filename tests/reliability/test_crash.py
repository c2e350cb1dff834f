"""Issue 4.1, crash safety: kill -9 a worker mid-stream, restart it: every effect once, every event.

Two tests: a random kill with thousands of messages in flight, and a kill placed exactly in
the window between the database commit and the broker's confirm (the outbox's reason to be).
"""

import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
from aio_pika.abc import AbstractChannel
from sqlalchemy import select

from db.models import Interaction, OutboxEvent
from messaging.topology import EVENTS_EXCHANGE
from tests.reliability.conftest import KILLED_LEASE_S, FleetFactory, Sessions
from tests.reliability.helpers import (
    assert_event_order,
    assert_every_event_published,
    assert_exactly_once,
    event_log,
    one_source,
    outbox,
    publish_creates,
)
from tests.support.amqp import Bot
from tests.support.processes import until

pytestmark = pytest.mark.slow
MESSAGES = 5000  # enough that a fast worker still has thousands left when killed
EMAILS = 700  # repeated e-mails: many interactions share one Lead


async def test_kill9_with_thousands_in_flight_loses_and_doubles_nothing(
    pg_sessions: Sessions,
    postgres_url: str,
    workers: FleetFactory,
    channel: AbstractChannel,
    bot: Bot,
) -> None:
    """5000 creates queued, closes published mid-stream (they drain waiting ones), kill -9.

    After a restart, each message_id is exactly one Interaction, and every committed event
    (including assignments made by draining, which no redelivery would repeat) arrived.
    """
    source, _ = await one_source(pg_sessions, [300, 300, 300])
    log = await event_log(channel)
    emails = [f"lead{n % EMAILS}@example.com" for n in range(MESSAGES)]
    message_ids = await publish_creates(channel, emails, source, uuid.uuid4().hex[:8])

    async with workers(postgres_url) as fleet:
        first = await fleet.start("first")
        await log.wait(lambda lg: len(lg.of("interaction.assigned")) >= 400, 30, "400 assigned")
        to_close = sorted(e.interaction_id for e in log.of("interaction.assigned"))[:400]
        for interaction_id in to_close:
            await bot.close(interaction_id)
        await first.wait_count("interaction created", 600)  # early: the worker is fast
        assert await first.kill() == -9
        killed_at = len(first.events("interaction created"))
        await fleet.start("restarted")
        await log.wait(
            lambda lg: (
                len(lg.interactions()) == MESSAGES
                and len(lg.of("interaction.closed")) == len(to_close)
            ),
            # One worker works off the thousands left: on a loaded host, over a minute.
            180 + KILLED_LEASE_S,
            "every interaction announced and every close done",
        )
        await assert_every_event_published(pg_sessions, log, within=10)
        await assert_event_order(pg_sessions, log, arrival=True)

    assert MESSAGES - killed_at >= 1000, f"only {MESSAGES - killed_at} left when killed"
    await assert_exactly_once(pg_sessions, message_ids)
    async with pg_sessions() as session:
        leads = set((await session.scalars(select(Interaction.lead_uuid))).all())
    assert len(leads) == EMAILS


@contextlib.asynccontextmanager
async def blocker_queue(channel: AbstractChannel) -> AsyncIterator[None]:
    """A queue bound to the events exchange that refuses every message (reject-publish).

    The broker then answers each event publish with a negative confirm: the worker has
    committed, and can never get the confirm. Killing it then is dying inside the hole.
    The queue is exclusive and deleted on the way out, failed test or not: left behind, it
    would refuse every event of every later test on this broker.
    """
    queue = await channel.declare_queue(
        f"test.blocker.{uuid.uuid4().hex[:6]}",
        exclusive=True,
        arguments={"x-max-length": 0, "x-overflow": "reject-publish"},
    )
    try:
        await queue.bind(await channel.get_exchange(EVENTS_EXCHANGE), "#")
        yield
    finally:
        await queue.delete(if_unused=False, if_empty=False)


async def all_marked_published(sessions: Sessions) -> bool:
    return all(r.published_at is not None for r in await outbox(sessions))


async def test_kill9_between_commit_and_confirm_is_healed_by_the_outbox(
    pg_sessions: Sessions,
    postgres_url: str,
    workers: FleetFactory,
    channel: AbstractChannel,
    bot: Bot,
) -> None:
    """A close frees the only operator, which drains the waiting interaction in the same commit.

    The process dies before any of that batch's events is confirmed. Redelivery of the close
    can only repeat the close event; the waiting interaction's assignment is announced only
    because the outbox row is relayed on the next start, with the event_id it was stored with.
    """
    source, [operator] = await one_source(pg_sessions, [1])
    log = await event_log(channel)
    await bot.create("first@example.com", source)
    await bot.create("second@example.com", source)
    async with workers(postgres_url, delivery_limit=1000) as fleet:
        first = await fleet.start("first")
        await log.wait(lambda lg: len(lg.first) == 2, 20, "assigned + waiting")
        [assigned] = log.of("interaction.assigned")
        [waiting] = log.of("interaction.waiting")
        # A consumer can hold an event before its confirm is recorded in the outbox.
        await until(lambda: all_marked_published(pg_sessions), 10, what="first events marked")
        async with blocker_queue(channel):
            await bot.close(assigned.interaction_id)
            await first.wait_for("batch not completed; returning it to the queue")
            await first.kill()

            stuck = [r for r in await outbox(pg_sessions) if r.published_at is None]
            assert {(r.routing_key, r.interaction_id) for r in stuck} == {
                ("interaction.closed", assigned.interaction_id),
                ("interaction.assigned", waiting.interaction_id),
            }, "the kill was not inside the commit-to-confirm window"
        await fleet.start("restarted")
        await log.wait(
            lambda lg: len(lg.first) == 4, 20 + KILLED_LEASE_S, "closed + drained assignment"
        )
        await assert_every_event_published(pg_sessions, log, within=10)
        await assert_event_order(pg_sessions, log, arrival=True)

    drained = [
        e for e in log.of("interaction.assigned") if e.interaction_id != assigned.interaction_id
    ]
    assert [e.body["operator_id"] for e in drained] == [operator]
    assert {e.event_id for e in log.first.values()} >= {r.event_id for r in stuck}
    assert log.duplicates >= 1, "the redelivered close replays its event under the same id"
    async with pg_sessions() as session:
        statuses = dict((await session.execute(select(Interaction.id, Interaction.status))).all())
        sent = (await session.scalars(select(OutboxEvent.event_id))).all()
    assert statuses == {assigned.interaction_id: "closed", waiting.interaction_id: "assigned"}
    assert len(sent) == 4
