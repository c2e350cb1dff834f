"""LeadCRUD: get_or_create_by_email is race-safe (one Lead however many creators), and the
router's batch read maps stored contacts to their leads."""

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.repositories.leads import LeadCRUD
from schemas.contacts import Contact, ContactKind
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


async def test_locked_owners_map_known_contacts_and_leave_new_ones_out(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    email = Contact(ContactKind.EMAIL, "a@example.com")
    phone = Contact(ContactKind.PHONE, "+79991234567")
    async with sessions() as session, session.begin():
        lead = await LeadCRUD(session).get_or_create_by_email("A@example.com")
    async with sessions() as session, session.begin():
        owners, leads = await LeadCRUD(session).locked_owners([email, phone])

    assert owners == {email: lead.uuid}
    assert leads[lead.uuid].shown.email == "a@example.com"
    assert await seed.lead_emails(sessions) == ["a@example.com"]
