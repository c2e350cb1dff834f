"""Operators over HTTP: CRUD, validation, the 409 on delete, and current_load's definition."""

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.api.helpers import add_operator, add_source, ok, put_weights, route_new
from tests.support import seed

Sessions = async_sessionmaker[AsyncSession]


async def test_create_read_list(client: AsyncClient) -> None:
    created = ok(await client.post("/operators", json={"name": " Ann ", "load_limit": 3}), 201)
    assert isinstance(created, dict)
    assert created.keys() == {"id", "name", "active", "load_limit", "current_load", "created_at"}
    assert (created["name"], created["active"], created["current_load"]) == ("Ann", True, 0)

    assert ok(await client.get(f"/operators/{created['id']}")) == created
    assert ok(await client.get("/operators")) == [created]


async def test_unknown_operator_is_404_with_json_detail(client: AsyncClient) -> None:
    for response in (
        await client.get("/operators/999"),
        await client.patch("/operators/999", json={"active": False}),
        await client.delete("/operators/999"),
    ):
        assert response.status_code == 404
        assert "999" in response.json()["detail"]


async def test_invalid_bodies_are_422(client: AsyncClient) -> None:
    for body in (
        {"name": "   ", "load_limit": 3},
        {"name": "", "load_limit": 3},
        {"name": "Ann", "load_limit": -1},
        {"name": "Ann"},
        {"name": "A\x00nn", "load_limit": 1},
    ):
        assert (await client.post("/operators", json=body)).status_code == 422, body
    operator = await add_operator(client)
    for patch in ({"name": None}, {"load_limit": "many"}, {"name": " "}, {"colour": "red"}):
        response = await client.patch(f"/operators/{operator}", json=patch)
        assert response.status_code == 422, patch
        assert isinstance(response.json()["detail"], list)


async def test_patch_changes_only_what_is_sent(client: AsyncClient) -> None:
    operator = await add_operator(client, "Ann", load_limit=3)

    patched = ok(await client.patch(f"/operators/{operator}", json={"load_limit": 7}))
    assert isinstance(patched, dict)
    assert (patched["name"], patched["load_limit"], patched["active"]) == ("Ann", 7, True)
    patched = ok(await client.patch(f"/operators/{operator}", json={"active": False, "name": "Bo"}))
    assert isinstance(patched, dict)
    assert (patched["name"], patched["load_limit"], patched["active"]) == ("Bo", 7, False)


async def test_delete_refused_while_assigned(client: AsyncClient, sessions: Sessions) -> None:
    operator = await add_operator(client, load_limit=2)
    source = await add_source(client)
    ok(await put_weights(client, source, {operator: 10}))
    [interaction] = await route_new(sessions, source)

    refused = await client.delete(f"/operators/{operator}")
    assert refused.status_code == 409
    assert "assigned" in refused.json()["detail"]

    ok(await client.post(f"/interactions/{interaction}/close"))
    deleted = await client.delete(f"/operators/{operator}")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert (await client.get(f"/operators/{operator}")).status_code == 404
    assert ok(await client.get(f"/sources/{source}/operators")) == {"weights": []}
    [row] = await seed.interactions(sessions)
    assert (row.status, row.operator_id) == ("closed", None)


async def test_current_load_is_the_number_of_assigned_interactions(
    app: FastAPI, client: AsyncClient, sessions: Sessions
) -> None:
    ann = await add_operator(client, "Ann", load_limit=3)
    source = await add_source(client)
    ok(await put_weights(client, source, {ann: 10}))
    ids = await route_new(sessions, source, count=5)
    ok(await client.post(f"/interactions/{ids[0]}/close"))

    operator = ok(await client.get(f"/operators/{ann}"))
    assert isinstance(operator, dict)
    assert operator["current_load"] == (await seed.assigned_counts(sessions))[ann] == 3
