"""Every change that can create capacity hands waiting interactions over, oldest first."""

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.api.helpers import add_operator, add_source, detail, ok, put_weights, route_new
from tests.support import seed
from tests.support.amqp import Inbox

Sessions = async_sessionmaker[AsyncSession]


async def statuses(client: AsyncClient, ids: list[int]) -> list[str]:
    return [str((await detail(client, i))["status"]) for i in ids]


async def test_activating_an_operator(
    client: AsyncClient, sessions: Sessions, events: Inbox
) -> None:
    ann = await add_operator(client, load_limit=2, active=False)
    source = await add_source(client)
    ok(await put_weights(client, source, {ann: 10}))
    ids = await route_new(sessions, source, 3)
    assert await statuses(client, ids) == ["waiting"] * 3

    patched = ok(await client.patch(f"/operators/{ann}", json={"active": True}))

    assert isinstance(patched, dict)
    assert patched["current_load"] == 2
    assert await statuses(client, ids) == ["assigned", "assigned", "waiting"]
    assigned = await events.take(2)
    assert [e.body["interaction_id"] for e in assigned] == ids[:2]
    assert {e.routing_key for e in assigned} == {"interaction.assigned"}


async def test_raising_a_limit(client: AsyncClient, sessions: Sessions) -> None:
    ann = await add_operator(client, load_limit=1)
    source = await add_source(client)
    ok(await put_weights(client, source, {ann: 10}))
    ids = await route_new(sessions, source, 4)

    ok(await client.patch(f"/operators/{ann}", json={"load_limit": 3}))

    assert await statuses(client, ids) == ["assigned", "assigned", "assigned", "waiting"]
    assert await seed.assigned_counts(sessions) == {ann: 3}


async def test_lowering_a_limit_keeps_what_is_assigned(
    client: AsyncClient, sessions: Sessions
) -> None:
    ann = await add_operator(client, load_limit=3)
    source = await add_source(client)
    ok(await put_weights(client, source, {ann: 10}))
    ids = await route_new(sessions, source, 3)

    patched = ok(await client.patch(f"/operators/{ann}", json={"load_limit": 1}))

    assert isinstance(patched, dict)
    assert (patched["load_limit"], patched["current_load"]) == (1, 3)
    assert await statuses(client, ids) == ["assigned"] * 3


async def test_changing_weights(client: AsyncClient, sessions: Sessions) -> None:
    source = await add_source(client)
    ids = await route_new(sessions, source, 3)
    ann = await add_operator(client, load_limit=2)

    ok(await put_weights(client, source, {ann: 50}))

    assert await statuses(client, ids) == ["assigned", "assigned", "waiting"]
    assert (await detail(client, ids[0]))["operator_id"] == ann


async def test_reassigning_frees_the_previous_operator(
    client: AsyncClient, sessions: Sessions
) -> None:
    ann = await add_operator(client, "Ann", load_limit=1)
    bob = await add_operator(client, "Bob", load_limit=1, active=True)
    source = await add_source(client)
    ok(await put_weights(client, source, {ann: 10}))
    first, second = await route_new(sessions, source, 2)

    ok(await client.post(f"/interactions/{first}/assign", json={"operator_id": bob}))

    assert (await detail(client, first))["operator_id"] == bob
    assert (await detail(client, second))["operator_id"] == ann
    assert await seed.assigned_counts(sessions) == {ann: 1, bob: 1}
