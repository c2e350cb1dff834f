"""Offers over HTTP: `accept_timeout_s` on sources, `POST /interactions/{id}/accept`, and the
offered count in the stats."""

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.api.helpers import add_operator, detail, ok, put_weights, route_new
from tests.support import seed
from tests.support.amqp import Inbox

Sessions = async_sessionmaker[AsyncSession]


async def test_accept_timeout_s_is_set_read_changed_and_cleared(client: AsyncClient) -> None:
    created = ok(
        await client.post("/sources", json={"identifier": "phone", "accept_timeout_s": 30}), 201
    )
    assert created["accept_timeout_s"] == 30
    source = created["id"]
    for bad in (0, -1, 86401, True, "30", 1.5):
        response = await client.patch(f"/sources/{source}", json={"accept_timeout_s": bad})
        assert response.status_code == 422, (bad, response.text)
        assert "accept_timeout_s" in str(response.json()["detail"])
    changed = ok(await client.patch(f"/sources/{source}", json={"accept_timeout_s": 45}))
    assert changed["accept_timeout_s"] == 45
    cleared = ok(await client.patch(f"/sources/{source}", json={"accept_timeout_s": None}))
    assert cleared["accept_timeout_s"] is None
    plain = ok(await client.post("/sources", json={"identifier": "mail"}), 201)
    assert plain["accept_timeout_s"] is None


async def test_accept_over_http(client: AsyncClient, sessions: Sessions, events: Inbox) -> None:
    source = ok(
        await client.post("/sources", json={"identifier": "phone", "accept_timeout_s": 60}), 201
    )["id"]
    ann = await add_operator(client, "Ann", load_limit=1)
    bob = await add_operator(client, "Bob", load_limit=1, active=False)
    ok(await put_weights(client, source, {ann: 10, bob: 10}))
    [offered] = await route_new(sessions, source)
    assert (await detail(client, offered))["status"] == "offered"
    stats = ok(await client.get("/stats/distribution"))
    assert (stats["offered_count"], stats["waiting_count"]) == (1, 0)
    assert ok(await client.get(f"/operators/{ann}"))["current_load"] == 1

    wrong = await client.post(f"/interactions/{offered}/accept", json={"operator_id": bob})
    assert wrong.status_code == 409
    assert wrong.json()["detail"] == (
        f"interaction {offered} is offered to operator {ann}, not to operator {bob}"
    )
    unknown = await client.post("/interactions/99999/accept", json={"operator_id": ann})
    assert unknown.status_code == 404
    assert (await client.post(f"/interactions/{offered}/accept", json={})).status_code == 422

    accepted = ok(await client.post(f"/interactions/{offered}/accept", json={"operator_id": ann}))
    assert (accepted["status"], accepted["operator"]["id"]) == ("assigned", ann)
    event = await events.next()
    assert (event.routing_key, event.body["interaction_id"], event.body["operator_id"]) == (
        "interaction.accepted",
        offered,
        ann,
    )
    again = ok(await client.post(f"/interactions/{offered}/accept", json={"operator_id": ann}))
    assert again["status"] == "assigned"
    assert ok(await client.get("/stats/distribution"))["offered_count"] == 0
    assert (await seed.operators(sessions))[ann].current_load == 1
    deleting = await client.delete(f"/operators/{ann}")
    assert deleting.status_code == 409
