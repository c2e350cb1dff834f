"""The outbox lease (issue 22.1), statement by statement on SQLite and PostgreSQL: a relay
claims only events nobody answers for, and of two relays exactly one gets a stuck event."""

from datetime import timedelta
from random import Random

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import OutboxEvent, OutboxOwner
from db.repositories.outbox import OutboxCRUD, RelayedRow
from db.repositories.outbox_owners import OutboxOwnerCRUD
from db.transactions import SessionTransactionRunner
from db.types import utcnow
from routing.commands import CreateRequest, Envelope
from routing.router import Router
from schemas.messages import CreateInteraction
from tests.support import seed

Sessions = async_sessionmaker[AsyncSession]
LEASE = timedelta(seconds=10)


async def write_event(sessions: Sessions, source: int, owner: str | None, n: int) -> str:
    """One interaction created by a worker that is `owner` (None: the API); its event's id."""
    command = CreateInteraction(email=f"lead{n}@example.com", source_id=source)
    request = CreateRequest(0, command, Envelope(f"m-{n}", None))
    outcome = await SessionTransactionRunner(sessions).run(
        lambda store: Router(store, Random(1), owner).route_batch([request], [])
    )
    [event] = outcome.events
    return event.event_id


async def register(sessions: Sessions, owner: str, lease: timedelta = LEASE) -> None:
    now = utcnow()
    async with sessions() as session, session.begin():
        await OutboxOwnerCRUD(session).register(owner, now, now + lease)


async def claim(sessions: Sessions, owner: str) -> list[RelayedRow]:
    async with sessions() as session, session.begin():
        return await OutboxCRUD(session).claim_stuck(owner, utcnow(), LEASE, 100)


async def owners(sessions: Sessions) -> dict[str, str | None]:
    async with sessions() as session:
        rows = await session.execute(select(OutboxEvent.event_id, OutboxEvent.owner))
        return {event_id: owner for event_id, owner in rows}


async def test_only_a_gone_owners_events_are_claimed_and_each_by_one_relay(
    sessions: Sessions,
) -> None:
    source = await seed.add_source(sessions, "s")
    for name in ("live", "gone", "a", "b"):
        await register(sessions, name)
    live = await write_event(sessions, source, "live", 1)
    gone = await write_event(sessions, source, "gone", 2)
    api_new = await write_event(sessions, source, None, 3)
    api_old = await write_event(sessions, source, None, 4)
    async with sessions() as session, session.begin():
        await session.execute(
            update(OutboxOwner)
            .where(OutboxOwner.id == "gone")
            .values(lease_until=utcnow() - timedelta(seconds=1))
        )
        await session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.event_id == api_old)
            .values(created_at=utcnow() - LEASE - timedelta(seconds=1))
        )

    async with sessions() as session:
        assert await OutboxCRUD(session).any_stuck("a", utcnow(), LEASE)
    first, second = await claim(sessions, "a"), await claim(sessions, "b")
    async with sessions() as session:
        assert not await OutboxCRUD(session).any_stuck("b", utcnow(), LEASE)

    assert [row.event_id for row in first] == [gone, api_old]  # oldest first
    assert second == []
    assert await owners(sessions) == {live: "live", gone: "a", api_new: None, api_old: "a"}
    async with sessions() as session:
        mine = await OutboxCRUD(session).unpublished("a", timedelta(0), 100)
    assert [row.event_id for row in mine] == [gone, api_old]  # a's relay sends them from now


async def test_a_released_owners_events_are_anyones_at_once(sessions: Sessions) -> None:
    source = await seed.add_source(sessions, "s")
    await register(sessions, "stopping")
    event_id = await write_event(sessions, source, "stopping", 1)
    assert await claim(sessions, "other") == []
    async with sessions() as session, session.begin():
        await OutboxOwnerCRUD(session).release("stopping")

    assert [row.event_id for row in await claim(sessions, "other")] == [event_id]


async def test_a_renewed_lease_keeps_the_events_and_a_lapsed_one_comes_back(
    sessions: Sessions,
) -> None:
    source = await seed.add_source(sessions, "s")
    await register(sessions, "w", lease=timedelta(seconds=-1))  # as if it missed its renewals
    await write_event(sessions, source, "w", 1)
    now = utcnow()
    async with sessions() as session, session.begin():
        await OutboxOwnerCRUD(session).renew("w", now, now + LEASE)
        await OutboxOwnerCRUD(session).renew("forgotten", now, now + LEASE)  # row gone: back
    assert await claim(sessions, "other") == []
    async with sessions() as session:
        assert set((await session.scalars(select(OutboxOwner.id))).all()) == {"w", "forgotten"}


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_claim_in_progress_is_skipped_not_waited_for(sessions: Sessions) -> None:
    """PostgreSQL: while one relay's claim is uncommitted, another's passes over its rows
    (`SKIP LOCKED`) instead of waiting and then sending them too."""
    source = await seed.add_source(sessions, "s")
    await register(sessions, "gone", lease=timedelta(seconds=-1))
    event_id = await write_event(sessions, source, "gone", 1)
    async with sessions() as holding, holding.begin():
        held = await OutboxCRUD(holding).claim_stuck("a", utcnow(), LEASE, 100)
        assert [row.event_id for row in held] == [event_id]
        assert await claim(sessions, "b") == []
    await register(sessions, "a")
    assert await claim(sessions, "b") == []
    assert await owners(sessions) == {event_id: "a"}
