"""LeadCRUD.get_or_create_by_email is race-safe: concurrent creators end with one Lead."""

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.repositories.leads import LeadCRUD
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


async def test_upsert_many_maps_known_and_new_emails(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        first = await LeadCRUD(session).upsert_many(["a@example.com", "b@example.com"])
    async with sessions() as session, session.begin():
        second = await LeadCRUD(session).upsert_many(["b@example.com", "c@example.com"])

    assert second["b@example.com"] == first["b@example.com"]
    assert set(second) == {"b@example.com", "c@example.com"}
    assert await seed.lead_emails(sessions) == ["a@example.com", "b@example.com", "c@example.com"]
