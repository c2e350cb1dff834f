"""Interactions over HTTP: list/detail, manual assignment, close, and the HTTP ingress."""

import json

from aio_pika.abc import AbstractChannel
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from messaging.topology import CREATE_QUEUE
from tests.api.helpers import add_operator, add_source, detail, ok, put_weights, route_new
from tests.support import seed
from tests.support.amqp import Inbox

Sessions = async_sessionmaker[AsyncSession]


async def test_list_filters_and_pages(client: AsyncClient, sessions: Sessions) -> None:
    ann = await add_operator(client, load_limit=2)
    tg, web = await add_source(client, "tg"), await add_source(client, "web")
    ok(await put_weights(client, tg, {ann: 10}))
    ids = await route_new(sessions, tg, 3) + await route_new(sessions, web, 2)

    everything = ok(await client.get("/interactions"))
    assert isinstance(everything, list)
    assert [i["id"] for i in everything] == ids
    assert [
        i["id"] for i in ok(await client.get("/interactions", params={"status": "assigned"}))
    ] == ids[:2]
    waiting = ok(await client.get("/interactions", params={"status": "waiting", "source_id": web}))
    assert [i["id"] for i in waiting] == ids[3:]
    mine = ok(await client.get("/interactions", params={"operator_id": ann}))
    assert [i["operator_id"] for i in mine] == [ann, ann]
    page = ok(await client.get("/interactions", params={"limit": 2, "offset": 1}))
    assert [i["id"] for i in page] == ids[1:3]
    by_message = ok(
        await client.get("/interactions", params={"message_id": everything[0]["message_id"]})
    )
    assert by_message == everything[:1]
    for bad in ({"limit": 1001}, {"limit": 0}, {"offset": -1}, {"status": "lost"}):
        assert (await client.get("/interactions", params=bad)).status_code == 422, bad


async def test_detail_has_lead_source_and_operator_inline(
    client: AsyncClient, sessions: Sessions
) -> None:
    ann = await add_operator(client)
    source = await add_source(client)
    ok(await put_weights(client, source, {ann: 10}))
    [interaction] = await route_new(sessions, source)

    body = await detail(client, interaction)

    assert body["lead"]["email"].endswith("@example.com")
    assert body["lead"]["uuid"] == body["lead_uuid"]
    assert body["source"]["identifier"] == "telegram"
    assert body["operator"]["id"] == ann
    assert body["operator"]["current_load"] == 1
    assert (body["status"], body["is_active"]) == ("assigned", True)
    assert (await client.get("/interactions/999")).status_code == 404
    assert (await client.get("/interactions/0")).status_code == 422


async def test_manual_assignment(client: AsyncClient, sessions: Sessions, events: Inbox) -> None:
    source = await add_source(client)
    [waiting] = await route_new(sessions, source)
    assert (await detail(client, waiting))["operator"] is None
    ann = await add_operator(client, "Ann", load_limit=1)

    assigned = ok(await client.post(f"/interactions/{waiting}/assign", json={"operator_id": ann}))

    assert isinstance(assigned, dict)
    assert (assigned["status"], assigned["operator"]["id"]) == ("assigned", ann)
    event = await events.next()
    assert (event.routing_key, event.body["interaction_id"], event.body["operator_id"]) == (
        "interaction.assigned",
        waiting,
        ann,
    )
    assert (await seed.operators(sessions))[ann].current_load == 1


async def test_manual_assignment_refusals(client: AsyncClient, sessions: Sessions) -> None:
    source = await add_source(client)
    first, second = await route_new(sessions, source, 2)
    full = await add_operator(client, "Full", load_limit=1)
    off = await add_operator(client, "Off", load_limit=5, active=False)
    ok(await client.post(f"/interactions/{first}/assign", json={"operator_id": full}))

    cases = {
        (second, full): 409,  # at its limit
        (second, off): 409,  # inactive
        (second, 9999): 404,  # unknown operator
        (9999, full): 404,  # unknown interaction
    }
    for (interaction, operator), status in cases.items():
        response = await client.post(
            f"/interactions/{interaction}/assign", json={"operator_id": operator}
        )
        assert response.status_code == status, (interaction, operator, response.text)
        assert isinstance(response.json()["detail"], str)
    ok(await client.post(f"/interactions/{first}/close"))
    closed = await client.post(f"/interactions/{first}/assign", json={"operator_id": full})
    assert closed.status_code == 409
    assert (await client.post(f"/interactions/{second}/assign", json={})).status_code == 422
    assert (await seed.operators(sessions))[full].current_load == 0


async def test_close_frees_capacity_for_the_oldest_waiting(
    client: AsyncClient, sessions: Sessions, events: Inbox
) -> None:
    ann = await add_operator(client, load_limit=1)
    source = await add_source(client)
    ok(await put_weights(client, source, {ann: 10}))
    busy, older, newer = await route_new(sessions, source, 3)

    closed = ok(await client.post(f"/interactions/{busy}/close"))

    assert isinstance(closed, dict)
    assert (closed["status"], closed["is_active"], closed["closed_at"] is not None) == (
        "closed",
        False,
        True,
    )
    received = {e.routing_key: e.body for e in await events.take(2)}
    assert received["interaction.closed"]["interaction_id"] == busy
    assert received["interaction.assigned"]["interaction_id"] == older
    assert (await detail(client, older))["operator_id"] == ann
    assert (await detail(client, newer))["status"] == "waiting"
    assert await seed.assigned_counts(sessions) == {ann: 1}

    again = ok(await client.post(f"/interactions/{busy}/close"))
    assert again == closed | {"operator": again["operator"]}
    assert (await client.post("/interactions/999/close")).status_code == 404


async def test_http_ingress_publishes_interaction_create(
    client: AsyncClient, channel: AbstractChannel
) -> None:
    source = await add_source(client)
    inbox = await Inbox(await channel.get_queue(CREATE_QUEUE)).start()
    body = {"email": " Client@Example.COM ", "source_id": source, "payload": {"text": "hi"}}

    accepted = ok(await client.post("/interactions", json=body), 202)

    assert isinstance(accepted, dict)
    received = await inbox.next()
    message = received.message
    assert message.message_id == accepted["message_id"]
    assert len(accepted["message_id"]) == 32
    assert (message.delivery_mode, message.content_type) == (2, "application/json")
    assert received.routing_key == "interaction.create"
    assert json.loads(message.body) == {
        "email": "client@example.com",
        "source_id": source,
        "payload": {"text": "hi"},
    }


async def test_http_ingress_refusals(client: AsyncClient, channel: AbstractChannel) -> None:
    source = await add_source(client)
    for body, status in (
        ({"email": "not-an-email", "source_id": source}, 422),
        ({"email": "a@example.com"}, 422),
        ({"email": "a@example.com", "source_id": source, "payload": "x" * 70_000}, 422),
        ({"email": "a@example.com", "source_id": 9999}, 404),
        ({"email": "a@example.com", "source_id": 2**40}, 422),  # beyond the id column
    ):
        response = await client.post("/interactions", json=body)
        assert response.status_code == status, (body, response.text)
    queue = await channel.declare_queue(CREATE_QUEUE, passive=True)
    assert queue.declaration_result.message_count == 0
