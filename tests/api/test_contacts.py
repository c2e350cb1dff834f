"""Leads from every channel over HTTP and AMQP (issue 14), and the user guide's walkthrough.

The user guide (`../shared/seeds/user-guide-operator-distribution.md`) sets up three operators
(limits 10/15/8), three sources (telegram 50/30/20, email 40/60, phone 70/30) and sends a phone
number, a Telegram handle and an e-mail; here the same set-up and requests go through our API
and a real worker, synchronously (`?wait=`), as the guide's requests did.
"""

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aio_pika.abc import AbstractChannel
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.settings import Settings
from tests.api.conftest import http_client, started_app
from tests.api.helpers import add_operator, add_source, ok, put_weights
from tests.conftest import running_worker
from tests.support.amqp import Inbox

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def ru_client(
    settings: Settings, sessions: Sessions, channel: AbstractChannel
) -> AsyncIterator[AsyncClient]:
    """API and worker with DEFAULT_PHONE_REGION=RU (numbers may omit +7)."""
    ru = settings.model_copy(update={"default_phone_region": "RU"})
    async with started_app(ru) as app, http_client(app) as client, running_worker(ru, sessions):
        yield client


async def create(client: AsyncClient, wait: int | None = 10, **body: Any) -> Any:
    params = {"wait": wait} if wait else {}
    return ok(await client.post("/interactions", json=body, params=params), 201 if wait else 202)


async def guide_setup(client: AsyncClient) -> tuple[list[int], dict[str, int]]:
    ivan = await add_operator(client, "Иван Петров", load_limit=10)
    maria = await add_operator(client, "Мария Сидорова", load_limit=15)
    alexey = await add_operator(client, "Алексей Иванов", load_limit=8)
    sources = {name: await add_source(client, name) for name in ("telegram", "email", "phone")}
    ok(await put_weights(client, sources["telegram"], {ivan: 50, maria: 30, alexey: 20}))
    ok(await put_weights(client, sources["email"], {ivan: 40, maria: 60}))
    ok(await put_weights(client, sources["phone"], {maria: 70, alexey: 30}))
    return [ivan, maria, alexey], sources


async def test_the_user_guides_walkthrough(ru_client: AsyncClient, events: Inbox) -> None:
    client = ru_client
    (ivan, maria, alexey), sources = await guide_setup(client)

    telegram = await create(client, handle="user123@telegram", source_id=sources["telegram"])
    email = await create(client, email="client@example.com", source_id=sources["email"])
    phone = await create(client, phone="+79991234567", source_id=sources["phone"])

    # Assigned at once, each to an operator the source weighs, with the synchronous reply.
    assert telegram["status"] == email["status"] == phone["status"] == "assigned"
    assert telegram["operator_id"] in (ivan, maria, alexey)
    assert email["operator_id"] in (ivan, maria)
    assert phone["operator_id"] in (maria, alexey)
    assert telegram["lead"]["handle"] == "user123@telegram"
    assert phone["lead"]["phone"] == "+79991234567"

    # The same person writes again, by phone in a local spelling and now with an e-mail too:
    # recognised, and the e-mail joins the lead.
    again = await create(
        client, phone="8 (999) 123-45-67", email="Ivan@Example.com", source_id=sources["phone"]
    )
    assert again["lead_uuid"] == phone["lead_uuid"]
    lead = ok(await client.get(f"/leads/{phone['lead_uuid']}"))
    assert {(c["kind"], c["value"]) for c in lead["contacts"]} == {
        ("phone", "+79991234567"),
        ("email", "ivan@example.com"),
    }
    assert ok(await client.get("/leads", params={"phone": "89991234567"})) == [lead]

    # Weights within limits: the phone source fills Maria (15) and Alexey (8) to their limits
    # and then waits; nobody else gets its interactions.
    loads = {
        o["operator_id"]: o for o in ok(await client.get("/stats/operators-load"))["operators"]
    }
    free = 15 - loads[maria]["current_load"] + 8 - loads[alexey]["current_load"]
    burst = [
        await create(client, wait=None, phone=f"+7999000{n:04d}", source_id=sources["phone"])
        for n in range(free + 3)
    ]
    outcomes = await events.take(4 + len(burst), within=30)  # the four above and the burst
    by_message = {e.body["message_id"]: e.body for e in outcomes}
    statuses = Counter(by_message[b["message_id"]]["status"] for b in burst)
    assert statuses == {"assigned": free, "waiting": 3}
    loads = {
        o["operator_id"]: o for o in ok(await client.get("/stats/operators-load"))["operators"]
    }
    assert (loads[maria]["current_load"], loads[alexey]["current_load"]) == (15, 8)
    assert loads[ivan]["current_load"] == sum(
        1 for i in (telegram, email) if i["operator_id"] == ivan
    )
    distribution = ok(await client.get("/stats/distribution"))
    assert distribution["waiting_count"] == 3


async def test_a_local_number_needs_default_phone_region(client: AsyncClient) -> None:
    source = await add_source(client)
    refused = await client.post(
        "/interactions", json={"phone": "8 999 123-45-67", "source_id": source}
    )
    assert refused.status_code == 422
    assert "DEFAULT_PHONE_REGION" in refused.text
    assert ok(
        await client.post("/interactions", json={"phone": "+7 999 123-45-67", "source_id": source}),
        202,
    )
    nothing = await client.post("/interactions", json={"source_id": source})
    assert nothing.status_code == 422
    assert "at least one of email, phone, handle is required" in nothing.text


async def test_wait_answers_202_when_no_outcome_comes_in_time(client: AsyncClient) -> None:
    """No worker runs here: after S seconds the request answers as without `wait`."""
    source = await add_source(client)
    body = {"email": "late@example.com", "source_id": source}
    accepted = ok(await client.post("/interactions", json=body, params={"wait": 1}), 202)
    assert set(accepted) == {"message_id"}


async def test_leads_are_found_by_any_contact(ru_client: AsyncClient) -> None:
    client = ru_client
    ann = await add_operator(client, "Ann", load_limit=10)
    source = await add_source(client)
    ok(await put_weights(client, source, {ann: 10}))
    made = await create(client, handle=" tg:77 ", email="a@example.com", source_id=source)

    by_handle = ok(await client.get("/leads", params={"handle": "tg:77"}))
    by_email = ok(await client.get("/leads", params={"email": " A@Example.com"}))
    assert by_handle == by_email and [lead["uuid"] for lead in by_handle] == [made["lead_uuid"]]
    assert by_handle[0]["handle"] == "tg:77" and by_handle[0]["phone"] is None
    assert ok(await client.get("/leads", params={"handle": "TG:77"})) == []  # exact
    assert ok(await client.get("/leads", params={"phone": "not a phone"})) == []
    missing = await client.get("/leads/00000000-0000-7000-8000-000000000000")
    assert missing.status_code == 404
