"""Issue 22.2 through a real worker: an interaction's events are numbered 1, 2, 3... and a copy
the outbox relay sends again carries the number the event was stored with."""

import asyncio

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import OutboxEvent
from schemas.settings import Settings
from tests.conftest import running_worker
from tests.integration.test_worker_flow import one_operator_source
from tests.support import seed
from tests.support.amqp import Bot, Inbox, Received

Sessions = async_sessionmaker[AsyncSession]
UNPUBLISHED = (
    select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None))
)


def numbered(received: list[Received]) -> list[tuple[str, int, int]]:
    return [(r.routing_key, r.body["interaction_id"], r.body["sequence"]) for r in received]


async def all_recorded(sessions: Sessions) -> None:
    async with asyncio.timeout(5):
        while await seed.scalar(sessions, UNPUBLISHED):  # noqa: ASYNC110 (bounded poll)
            await asyncio.sleep(0.02)


async def test_events_are_numbered_per_interaction_and_a_relayed_copy_keeps_its_number(
    settings: Settings, sessions: Sessions, bot: Bot, events: Inbox
) -> None:
    source, _ = await one_operator_source(sessions, limit=1)
    async with running_worker(settings, sessions):
        await bot.create("a@example.com", source)
        [assigned] = await events.take(1)
        await bot.create("b@example.com", source)
        [waiting] = await events.take(1)
        a, b = assigned.body["interaction_id"], waiting.body["interaction_id"]
        await bot.close(a)
        freed = await events.take(2)
        await bot.close(b)
        [closed] = await events.take(1)
        await all_recorded(sessions)

    assert numbered([assigned, waiting, *freed, closed]) == [
        ("interaction.assigned", a, 1),
        ("interaction.waiting", b, 1),
        ("interaction.closed", a, 2),
        ("interaction.assigned", b, 2),
        ("interaction.closed", b, 3),
    ]
    async with sessions() as session, session.begin():  # as if b's close was never confirmed
        await session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.event_id == closed.body["event_id"])
            .values(published_at=None)
        )

    async with running_worker(settings, sessions):  # the first released its lease: relayed now
        again = await events.next()
        await all_recorded(sessions)

    assert again.message.message_id == closed.message.message_id
    assert again.body == closed.body and again.body["sequence"] == 3
