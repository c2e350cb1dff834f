"""Sources and weights over HTTP: unique identifiers, whole-set replacement, validation."""

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.repositories.weights import SourceOperatorSettingCRUD
from tests.api.helpers import add_operator, add_source, ok, put_weights

Sessions = async_sessionmaker[AsyncSession]


async def test_create_read_list_and_duplicate(client: AsyncClient) -> None:
    body = {"identifier": "telegram", "description": "Support bot"}
    created = ok(await client.post("/sources", json=body), 201)
    assert isinstance(created, dict)
    assert created.keys() == {
        "id",
        "identifier",
        "description",
        "sticky",
        "max_wait_s",
        "accept_timeout_s",
        "created_at",
    }
    assert created["sticky"] is False
    assert created["max_wait_s"] is created["accept_timeout_s"] is None

    duplicate = await client.post("/sources", json={"identifier": " telegram "})
    assert duplicate.status_code == 409
    assert "telegram" in duplicate.json()["detail"]
    assert ok(await client.get(f"/sources/{created['id']}")) == created
    assert ok(await client.get("/sources")) == [created]
    assert (await client.get("/sources/404")).status_code == 404


async def test_invalid_sources_are_422(client: AsyncClient) -> None:
    for body in ({"identifier": ""}, {"identifier": "  "}, {}, {"identifier": "x" * 101}):
        assert (await client.post("/sources", json=body)).status_code == 422, body


async def test_weights_replace_the_whole_set(client: AsyncClient, sessions: Sessions) -> None:
    source = await add_source(client)
    ann, bob, cid = [await add_operator(client, n) for n in ("Ann", "Bob", "Cid")]

    first = ok(await put_weights(client, source, {bob: 30, ann: 10}))
    assert first == {
        "weights": [{"operator_id": ann, "weight": 10}, {"operator_id": bob, "weight": 30}]
    }
    second = ok(await put_weights(client, source, {cid: 100, ann: 1}))
    assert ok(await client.get(f"/sources/{source}/operators")) == second
    async with sessions() as session:
        rows = await SourceOperatorSettingCRUD(session).list_by_source(source)
    assert {(r.operator_id, r.weight) for r in rows} == {(ann, 1), (cid, 100)}

    assert ok(await put_weights(client, source, {})) == {"weights": []}


async def test_weights_validation(client: AsyncClient) -> None:
    source = await add_source(client)
    ann = await add_operator(client)
    for weight in (0, 101, -5):
        assert (await put_weights(client, source, {ann: weight})).status_code == 422
    twice = {"weights": [{"operator_id": ann, "weight": 5}, {"operator_id": ann, "weight": 6}]}
    response = await client.put(f"/sources/{source}/operators", json=twice)
    assert response.status_code == 422
    assert "once" in str(response.json()["detail"])

    unknown = await put_weights(client, source, {ann: 5, 9999: 5})
    assert unknown.status_code == 404
    assert "9999" in unknown.json()["detail"]
    assert (await put_weights(client, 777, {ann: 5})).status_code == 404
    assert (await client.get("/sources/777/operators")).status_code == 404
    assert ok(await client.get(f"/sources/{source}/operators")) == {"weights": []}


async def test_patch_changes_only_what_is_sent(client: AsyncClient) -> None:
    source = await add_source(client, "telegram")
    other = await add_source(client, "email")

    patched = ok(await client.patch(f"/sources/{source}", json={"sticky": True}))
    assert (patched["identifier"], patched["sticky"]) == ("telegram", True)
    assert ok(await client.get(f"/sources/{source}"))["sticky"] is True
    for body, status in (
        ({"sticky": None}, 422),
        ({"sticky": "yes"}, 422),
        ({"max_load": 1}, 422),
        ({"identifier": "email"}, 409),
    ):
        response = await client.patch(f"/sources/{source}", json=body)
        assert response.status_code == status, (body, response.text)
    assert (await client.patch("/sources/9999", json={"sticky": True})).status_code == 404
    assert ok(await client.get(f"/sources/{other}"))["sticky"] is False


async def test_max_wait_s_is_set_changed_and_cleared(client: AsyncClient) -> None:
    created = ok(
        await client.post("/sources", json={"identifier": "phone", "max_wait_s": 300}), 201
    )
    assert created["max_wait_s"] == 300
    source = created["id"]
    assert ok(await client.patch(f"/sources/{source}", json={"max_wait_s": 60}))["max_wait_s"] == 60
    assert (
        ok(await client.patch(f"/sources/{source}", json={"max_wait_s": None}))["max_wait_s"]
        is None
    )
    for bad in (0, -1, "60", 1.5, True, 10**9):
        response = await client.patch(f"/sources/{source}", json={"max_wait_s": bad})
        assert response.status_code == 422, (bad, response.text)
