"""LeadCRUD: get_or_create_by_email is race-safe (one Lead however many creators), the
router's batch read maps stored contacts to their leads, and an unlocked read of a lead that
a concurrent merge removes ends in an error the routing transaction retries."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.errors import is_transient
from db.models import Lead
from db.repositories.leads import LeadCRUD
from db.repositories.sources import SourceCRUD
from db.routing_store.sessions import session_store
from db.session import create_engine, create_session_factory
from routing.identity import LeadMerge
from routing.rows import NewContact, NewInteraction
from schemas.contacts import Contact, ContactKind
from schemas.events import InteractionStatus
from tests.support import seed


async def test_concurrent_get_or_create_makes_one_lead(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async def create(spelling: str) -> str:
        async with sessions() as session, session.begin():
            return (await LeadCRUD(session).get_or_create_by_email(spelling)).uuid

    spellings = ["Race@Example.com", " race@example.com", "RACE@EXAMPLE.COM"] * 4
    uuids = await asyncio.gather(*(create(s) for s in spellings))

    assert len(set(uuids)) == 1
    assert await seed.lead_emails(sessions) == ["race@example.com"]


async def test_leads_of_maps_known_contacts_and_leaves_new_ones_out(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    email = Contact(ContactKind.EMAIL, "a@example.com")
    phone = Contact(ContactKind.PHONE, "+79991234567")
    async with sessions() as session, session.begin():
        lead = await LeadCRUD(session).get_or_create_by_email("A@example.com")
    async with sessions() as session, session.begin():
        owners, leads = await session_store(session).leads_of([email, phone], lock=True)

    assert owners == {email: lead.uuid}
    assert leads[lead.uuid].shown.email == "a@example.com"
    assert await seed.lead_emails(sessions) == ["a@example.com"]


async def test_a_lead_merged_away_after_an_unlocked_read_fails_the_insert_transiently(
    postgres_url: str,
) -> None:
    """The common batch reads leads without locks. Here another transaction merges the lead
    it read into an older one and commits before the batch inserts its interaction: the
    insert fails on the lead's foreign key, an error the worker retries (and the retry reads
    the survivor)."""
    engine = create_engine(postgres_url)
    sessions = create_session_factory(engine)
    phone = Contact(ContactKind.PHONE, "+79991234567")
    now = datetime.now(UTC)
    try:
        async with sessions() as session, session.begin():
            source = await SourceCRUD(session).create("tg", "bot")
            session.add(Lead(uuid="older", email="a@example.com", created_at=now - timedelta(1)))
            session.add(Lead(uuid="newer", phone=phone.value, created_at=now))
            await session.flush()
            await session_store(session).insert_contacts(
                [NewContact("newer", "phone", phone.value, now)]
            )
        async with sessions() as batch, batch.begin():
            owners, _ = await session_store(batch).leads_of([phone])  # no lock
            assert owners == {phone: "newer"}
            async with sessions() as merger, merger.begin():
                await session_store(merger).merge_leads([LeadMerge("older", ("newer",))])
            row = NewInteraction(
                "newer", source.id, None, InteractionStatus.WAITING, True, None, None, None,
                None, now, None, 0, None,
            )  # fmt: skip
            with pytest.raises(IntegrityError) as raised:
                await session_store(batch).insert_interactions([row])
        assert is_transient(raised.value), raised.value
    finally:
        await engine.dispose()
