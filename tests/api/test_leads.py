"""Leads by normalised e-mail, and a lead's interactions."""

import uuid

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.api.helpers import add_source, detail, ok, route_new

Sessions = async_sessionmaker[AsyncSession]


async def test_find_lead_by_email_and_list_its_interactions(
    client: AsyncClient, sessions: Sessions
) -> None:
    source = await add_source(client)
    [interaction] = await route_new(sessions, source)
    lead = (await detail(client, interaction))["lead"]
    assert isinstance(lead, dict)
    shouted = "  " + lead["email"].upper() + " "

    assert ok(await client.get("/leads", params={"email": shouted})) == [lead]
    assert ok(await client.get("/leads")) == [lead]
    assert ok(await client.get("/leads", params={"email": "nobody@example.com"})) == []
    assert ok(await client.get("/leads", params={"email": "not an address"})) == []
    rows = ok(await client.get(f"/leads/{lead['uuid']}/interactions"))
    assert [r["id"] for r in rows] == [interaction]


async def test_unknown_lead(client: AsyncClient) -> None:
    assert (await client.get(f"/leads/{uuid.uuid4()}/interactions")).status_code == 404
    assert (await client.get("/leads/not-a-uuid/interactions")).status_code == 422
