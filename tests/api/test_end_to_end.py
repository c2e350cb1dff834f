"""Configure over HTTP, publish over AMQP (or the HTTP ingress), read the result over HTTP."""

from typing import Any

from httpx import AsyncClient

from tests.api.helpers import add_operator, add_source, detail, ok, put_weights
from tests.support.amqp import Bot, Inbox
from worker.app import Worker


async def by_message_id(client: AsyncClient, message_id: str) -> Any:
    rows = ok(await client.get("/interactions", params={"message_id": message_id}))
    assert len(rows) == 1
    return rows[0]


async def test_configure_publish_read(
    client: AsyncClient, worker: Worker, bot: Bot, events: Inbox
) -> None:
    ann = await add_operator(client, "Ann", load_limit=1)
    source = await add_source(client, "telegram")
    ok(await put_weights(client, source, {ann: 100}))

    first = await bot.create(" Lead@Example.com ", source, {"text": "hi"})
    second = await bot.create("other@example.com", source)
    received = {e.body["message_id"]: e for e in await events.take(2)}

    assert received[first].routing_key == "interaction.assigned"
    assert received[second].routing_key == "interaction.waiting"
    row = await by_message_id(client, first)
    assert (row["status"], row["operator_id"], row["payload"]) == ("assigned", ann, {"text": "hi"})
    leads = ok(await client.get("/leads", params={"email": "LEAD@example.com"}))
    assert [lead["uuid"] for lead in leads] == [row["lead_uuid"]]

    ok(await client.post(f"/interactions/{row['id']}/close"))
    after_close = {e.routing_key: e.body for e in await events.take(2)}
    waiting = await by_message_id(client, second)
    assert after_close["interaction.assigned"]["interaction_id"] == waiting["id"]
    assert (waiting["status"], waiting["operator_id"]) == ("assigned", ann)


async def test_http_ingress_reaches_the_worker(
    client: AsyncClient, worker: Worker, events: Inbox
) -> None:
    ann = await add_operator(client, load_limit=3)
    source = await add_source(client)
    ok(await put_weights(client, source, {ann: 10}))

    accepted = ok(
        await client.post("/interactions", json={"email": "b@example.com", "source_id": source}),
        202,
    )
    assert isinstance(accepted, dict)
    event = await events.next()

    assert event.body["message_id"] == accepted["message_id"]
    row = await by_message_id(client, accepted["message_id"])
    assert (row["status"], row["operator_id"]) == ("assigned", ann)
    assert (await detail(client, int(str(row["id"]))))["lead"]["email"] == "b@example.com"


async def test_worker_sees_api_changes_on_its_next_message(
    client: AsyncClient, worker: Worker, bot: Bot, events: Inbox
) -> None:
    ann = await add_operator(client, "Ann", load_limit=5)
    bob = await add_operator(client, "Bob", load_limit=5)
    source = await add_source(client)
    ok(await put_weights(client, source, {ann: 100}))
    await bot.create("one@example.com", source)
    assert (await events.next()).body["operator_id"] == ann

    ok(await client.patch(f"/operators/{ann}", json={"active": False}))
    await bot.create("two@example.com", source)
    assert (await events.next()).routing_key == "interaction.waiting"

    ok(await put_weights(client, source, {bob: 100}))
    drained = await events.next()
    assert (drained.routing_key, drained.body["operator_id"]) == ("interaction.assigned", bob)
    await bot.create("three@example.com", source)
    assert (await events.next()).body["operator_id"] == bob
