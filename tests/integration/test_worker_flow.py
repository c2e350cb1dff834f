"""Publish -> event -> row, on the real broker and on SQLite and PostgreSQL."""

import asyncio
import time
import uuid

from aio_pika.abc import AbstractChannel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import OutboxEvent
from schemas.settings import Settings
from tests.conftest import running_worker
from tests.support import seed
from tests.support.amqp import Bot, Inbox
from worker.app import Worker

Sessions = async_sessionmaker[AsyncSession]


async def one_operator_source(
    sessions: Sessions, limit: int, active: bool = True
) -> tuple[int, int]:
    source = await seed.add_source(sessions, "telegram")
    operator = await seed.add_operator(sessions, "Ann", limit, active)
    await seed.set_weights(sessions, source, {operator: 50})
    return source, operator


async def test_interaction_is_assigned_stored_and_announced(
    sessions: Sessions, worker: Worker, bot: Bot, events: Inbox
) -> None:
    source, operator = await one_operator_source(sessions, limit=5)
    message_id = await bot.create(" Client@Example.COM ", source, {"text": "hi"})

    event = await events.next()

    assert event.routing_key == "interaction.assigned"
    assert event.message.message_id == event.body["event_id"]
    assert event.message.delivery_mode == 2
    assert (event.message.content_type, event.message.type) == (
        "application/json",
        "interaction.assigned",
    )
    assert event.message.timestamp is not None
    assert abs(event.message.timestamp.timestamp() - time.time()) < 60
    assert event.body["status"] == "assigned"
    assert event.body["operator_id"] == operator
    assert event.body["email"] == "client@example.com"
    assert event.body["message_id"] == message_id
    [row] = await seed.interactions(sessions)
    assert (row.id, row.status, row.operator_id, row.is_active) == (
        event.body["interaction_id"],
        "assigned",
        operator,
        True,
    )
    assert row.payload == {"text": "hi"}
    assert row.lead_uuid == event.body["lead_uuid"]
    assert await seed.lead_emails(sessions) == ["client@example.com"]
    assert (await seed.operators(sessions))[operator].current_load == 1


async def test_nobody_free_means_waiting(
    sessions: Sessions, worker: Worker, bot: Bot, events: Inbox
) -> None:
    source, _ = await one_operator_source(sessions, limit=5, active=False)
    await bot.create("a@example.com", source)

    event = await events.next()

    assert event.routing_key == "interaction.waiting"
    assert event.body["operator_id"] is None
    [row] = await seed.interactions(sessions)
    assert (row.status, row.operator_id) == ("waiting", None)


async def test_load_limit_reached_then_waiting(
    sessions: Sessions, worker: Worker, bot: Bot, events: Inbox
) -> None:
    source, operator = await one_operator_source(sessions, limit=2)
    for i in range(5):
        await bot.create(f"lead{i}@example.com", source)

    received = await events.take(5)

    statuses = sorted(e.body["status"] for e in received)
    assert statuses == ["assigned", "assigned", "waiting", "waiting", "waiting"]
    assert (await seed.operators(sessions))[operator].current_load == 2
    assert await seed.assigned_counts(sessions) == {operator: 2}


async def test_close_frees_the_operator_for_the_oldest_waiting(
    sessions: Sessions, worker: Worker, bot: Bot, events: Inbox
) -> None:
    source, operator = await one_operator_source(sessions, limit=1)
    for i in range(3):
        await bot.create(f"lead{i}@example.com", source)
    first, second, third = sorted((await events.take(3)), key=lambda e: e.body["interaction_id"])
    assert [first.body["status"], second.body["status"], third.body["status"]] == [
        "assigned",
        "waiting",
        "waiting",
    ]

    await bot.close(first.body["interaction_id"])
    closed, assigned = await events.take(2)

    assert closed.routing_key == "interaction.closed"
    assert closed.body["interaction_id"] == first.body["interaction_id"]
    assert assigned.routing_key == "interaction.assigned"
    assert assigned.body["interaction_id"] == second.body["interaction_id"]  # oldest first
    assert assigned.body["operator_id"] == operator
    rows = {r.id: r for r in await seed.interactions(sessions)}
    assert rows[first.body["interaction_id"]].status == "closed"
    assert rows[first.body["interaction_id"]].is_active is False
    assert rows[first.body["interaction_id"]].closed_at is not None
    assert rows[second.body["interaction_id"]].status == "assigned"
    assert rows[third.body["interaction_id"]].status == "waiting"
    assert (await seed.operators(sessions))[operator].current_load == 1


async def test_closing_a_waiting_interaction_frees_nobody(
    sessions: Sessions, worker: Worker, bot: Bot, events: Inbox
) -> None:
    source, operator = await one_operator_source(sessions, limit=1)
    await bot.create("a@example.com", source)
    await bot.create("b@example.com", source)
    waiting = next(e for e in await events.take(2) if e.body["status"] == "waiting")

    await bot.close(waiting.body["interaction_id"])
    closed = await events.next()

    assert closed.body["status"] == "closed" and closed.body["operator_id"] is None
    assert (await seed.operators(sessions))[operator].current_load == 1


async def test_repeated_message_id_makes_one_interaction_and_the_same_event(
    sessions: Sessions, worker: Worker, bot: Bot, events: Inbox
) -> None:
    source, _ = await one_operator_source(sessions, limit=5)
    message_id = uuid.uuid4().hex
    await bot.create("a@example.com", source, message_id=message_id)
    original = await events.next()

    await bot.create("a@example.com", source, message_id=message_id)
    again = await events.next()

    assert again.body == original.body
    assert again.message.message_id == original.message.message_id
    assert len(await seed.interactions(sessions)) == 1


async def test_repeated_message_id_inside_one_batch(
    sessions: Sessions, worker: Worker, bot: Bot, events: Inbox
) -> None:
    source, _ = await one_operator_source(sessions, limit=5)
    message_id = uuid.uuid4().hex
    await asyncio.gather(
        *(bot.create("a@example.com", source, message_id=message_id) for _ in range(3))
    )

    received = await events.take(3)

    assert len({e.body["event_id"] for e in received}) == 1
    assert len(await seed.interactions(sessions)) == 1
    assert (await seed.operators(sessions)).popitem()[1].current_load == 1


async def test_reply_to_and_correlation_id(
    sessions: Sessions, worker: Worker, bot: Bot, events: Inbox, channel: AbstractChannel
) -> None:
    source, _ = await one_operator_source(sessions, limit=5)
    reply_queue = await channel.declare_queue(exclusive=True)
    replies = await Inbox(reply_queue).start()

    await bot.create("a@example.com", source, reply_to=reply_queue.name, correlation_id="corr-1")

    reply = await replies.next()
    broadcast = await events.next()
    assert reply.message.correlation_id == "corr-1"
    assert broadcast.message.correlation_id == "corr-1"
    assert reply.body == broadcast.body
    assert reply.message.message_id == broadcast.body["event_id"]


async def test_events_are_marked_published_before_the_worker_acks(
    sessions: Sessions, settings: Settings, bot: Bot, events: Inbox
) -> None:
    source, _ = await one_operator_source(sessions, limit=5)
    async with running_worker(settings, sessions):
        for i in range(3):
            await bot.create(f"l{i}@example.com", source)
        await events.take(3)
    # The worker stopped gracefully: every batch it took was committed, confirmed and recorded.
    unpublished = (
        select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None))
    )
    assert await seed.scalar(sessions, unpublished) == 0
    assert await seed.scalar(sessions, select(func.count()).select_from(OutboxEvent)) == 3


async def test_confirms_are_recorded_while_the_worker_idles(
    sessions: Sessions, worker: Worker, bot: Bot, events: Inbox
) -> None:
    """Confirms are recorded in the next batch's transaction, or soon after the last batch:
    a worker that goes idle must not leave them for the relay (which would re-send them)."""
    source, _ = await one_operator_source(sessions, limit=5)
    await bot.create("lone@example.com", source)  # a lone batch: no next batch records it
    await events.next()
    unpublished = (
        select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None))
    )
    async with asyncio.timeout(5):  # no event marks this moment: poll the database
        while await seed.scalar(sessions, unpublished):  # noqa: ASYNC110 (bounded poll)
            await asyncio.sleep(0.02)
    assert events.pending() == 0  # and nothing was re-sent by the relay meanwhile
