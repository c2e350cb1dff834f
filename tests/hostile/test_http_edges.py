"""Hostile and careless HTTP input: every case gets an exact 4xx with a clear `detail`, the
answer stays small, nothing reaches the database or the broker, and the app goes on answering.
"""

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aio_pika.abc import AbstractChannel
from httpx import AsyncClient, Response
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from structlog.testing import capture_logs

from api.body_limit import MAX_BODY_BYTES
from api.lifespan import OPEN_API_WARNING
from messaging.topology import CREATE_QUEUE
from schemas.fields import MAX_DB_INT
from schemas.settings import Settings
from tests.api.conftest import started_app
from tests.api.helpers import add_operator, add_source, detail, ok, put_weights, route_new
from tests.support import seed

Sessions = async_sessionmaker[AsyncSession]
JSON = {"Content-Type": "application/json"}


async def post_raw(client: AsyncClient, path: str, body: str, method: str = "POST") -> Response:
    """Sends `body` as written (httpx's `json=` could not encode a lone surrogate)."""
    return await client.request(method, path, content=body.encode(), headers=JSON)


def errors_of(response: Response) -> list[dict[str, Any]]:
    """The 422's pydantic-shaped list, checked for shape."""
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert isinstance(errors, list) and errors
    for error in errors:
        assert {"type", "loc", "msg"} <= error.keys(), error
    return errors


async def nothing_published(channel: AbstractChannel) -> None:
    queue = await channel.declare_queue(CREATE_QUEUE, passive=True)
    assert queue.declaration_result.message_count == 0


async def still_answers(client: AsyncClient) -> None:
    assert (await client.get("http://localhost/health")).status_code == 200
    ok(await client.get("/operators"))


# --- body size -------------------------------------------------------------------------------


async def test_fifty_megabyte_post_is_413_with_a_small_answer(
    client: AsyncClient, channel: AbstractChannel
) -> None:
    source = await add_source(client)
    head = f'{{"email": "a@example.com", "source_id": {source}, "payload": "'.encode()
    body = head + b"x" * (50 * 1024 * 1024) + b'"}'

    response = await client.post("/interactions", content=body, headers=JSON)

    assert response.status_code == 413
    assert response.json() == {
        "detail": f"request body is {len(body)} bytes, over the {MAX_BODY_BYTES} byte limit"
    }
    assert len(response.content) < 200
    await nothing_published(channel)
    await still_answers(client)


async def test_chunked_oversize_body_is_413_without_reading_it_all(
    client: AsyncClient, channel: AbstractChannel
) -> None:
    source = await add_source(client)
    chunk = 16 * 1024
    sent = 0

    async def stream() -> AsyncIterator[bytes]:
        nonlocal sent
        yield f'{{"email": "a@example.com", "source_id": {source}, "payload": "'.encode()
        for _ in range(1024):  # 16 MiB if it were all read
            sent += 1
            yield b"x" * chunk
        yield b'"}'

    response = await client.post("/interactions", content=stream(), headers=JSON)

    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json() == {"detail": f"request body is over the {MAX_BODY_BYTES} byte limit"}
    assert sent * chunk <= MAX_BODY_BYTES + 2 * chunk  # stopped at the limit, not at the end
    await nothing_published(channel)
    await still_answers(client)


async def test_chunked_body_under_the_limit_still_works(client: AsyncClient) -> None:
    source = await add_source(client)

    async def stream() -> AsyncIterator[bytes]:
        yield b'{"email": "a@example.com", '
        yield f'"source_id": {source}, "payload": {{"text": "{"y" * 60_000}"}}}}'.encode()

    ok(await client.post("/interactions", content=stream(), headers=JSON), 202)


# --- what a 422 echoes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/operators", "name"),
        ("/sources", "identifier"),
        ("/sources", "description"),
        ("/interactions", "email"),
        ("/interactions", "payload"),
    ],
)
async def test_422_for_a_100_kb_string_echoes_only_a_prefix(
    client: AsyncClient, path: str, field: str
) -> None:
    source = await add_source(client)
    bodies: dict[str, dict[str, Any]] = {
        "/operators": {"name": "Ann", "load_limit": 1},
        "/sources": {"identifier": "web"},
        "/interactions": {"email": "a@example.com", "source_id": source},
    }
    huge = "z" * 100_000

    response = await client.post(path, json=bodies[path] | {field: huge})

    [error] = errors_of(response)
    assert len(response.content) < 2048, response.text
    assert error["loc"] == ["body", field]
    assert error["input"] == "z" * 100 + "…"
    assert len(error["msg"]) <= 301


async def test_422_for_a_large_container_echoes_a_cut_repr(client: AsyncClient) -> None:
    weights = [{"operator_id": 1, "weight": 50, "note": "n" * 1000} for _ in range(100)]

    response = await client.put("/sources/1/operators", json={"weights": weights})

    errors = errors_of(response)
    assert len(response.content) < 8192, len(response.content)
    assert errors[-1] == {"type": "too_many_errors", "loc": [], "msg": "80 more errors not shown"}
    assert all(len(json.dumps(e.get("input"))) < 200 for e in errors)


# --- lone surrogates -------------------------------------------------------------------------


LONE = "\ud800"
SOURCE, OPERATOR = -1, -2  # stand-ins for the ids each test creates


def surrogate_bodies() -> dict[str, tuple[str, str, Any, list[str]]]:
    """Each body holds one lone surrogate (`json.dumps` writes the escape `\\ud800`), and the
    `loc` its 422 must point at."""
    create = {"email": "a@example.com", "source_id": SOURCE}
    operator = "/operators/{operator}"
    weights = "/sources/{source}/operators"
    return {
        "operator-name": ("POST", "/operators", {"name": LONE, "load_limit": 1}, ["name"]),
        "operator-name-patch": ("PATCH", operator, {"name": "A" + LONE}, ["name"]),
        "source-identifier": ("POST", "/sources", {"identifier": LONE}, ["identifier"]),
        "source-description": (
            "POST",
            "/sources",
            {"identifier": "web", "description": "a" + LONE},
            ["description"],
        ),
        "interaction-email": (
            "POST",
            "/interactions",
            create | {"email": LONE + "@example.com"},
            ["email"],
        ),
        "interaction-email-alone": ("POST", "/interactions", create | {"email": LONE}, ["email"]),
        "interaction-payload-value": (
            "POST",
            "/interactions",
            create | {"payload": {"t": LONE}},
            ["payload"],
        ),
        "interaction-payload-key": (
            "POST",
            "/interactions",
            create | {"payload": {LONE: 1}},
            ["payload"],
        ),
        "interaction-payload-string": (
            "POST",
            "/interactions",
            create | {"payload": LONE},
            ["payload"],
        ),
        "unknown-field-name": ("POST", "/operators", {"name": "Bo", "load_limit": 1, LONE: 1}, []),
        "assign-body": ("POST", "/interactions/1/assign", {"operator_id": LONE}, ["operator_id"]),
        "weights-body": ("PUT", weights, {"weights": LONE}, ["weights"]),
    }


def with_ids(value: Any, source: int, operator: int) -> Any:
    if value == SOURCE:
        return source
    if value == OPERATOR:
        return operator
    if isinstance(value, dict):
        return {k: with_ids(v, source, operator) for k, v in value.items()}
    return value


@pytest.mark.parametrize("case", list(surrogate_bodies()))
async def test_lone_surrogate_is_422_never_500(
    client: AsyncClient, channel: AbstractChannel, case: str
) -> None:
    source = await add_source(client)
    operator = await add_operator(client)
    method, path, body, loc = surrogate_bodies()[case]
    raw = json.dumps(with_ids(body, source, operator))
    assert "\\ud800" in raw

    response = await post_raw(client, path.format(source=source, operator=operator), raw, method)

    errors = errors_of(response)
    assert errors[0]["loc"][: len(loc) + 1] == ["body", *loc], errors
    # echoed as the six characters `\ud800`: valid UTF-8, and still recognisable
    assert any("\\ud800" in json.dumps(e, ensure_ascii=False) for e in errors), errors
    await nothing_published(channel)
    assert [o["name"] for o in ok(await client.get("/operators"))] == ["Ann"]
    assert [s["identifier"] for s in ok(await client.get("/sources"))] == ["telegram"]
    await still_answers(client)


async def test_lone_surrogate_in_a_query_string_is_never_500(client: AsyncClient) -> None:
    for query in ("message_id=%ED%A0%80", "message_id=\\ud800", "status=%ED%A0%80"):
        response = await client.get(f"/interactions?{query}")
        assert response.status_code in (200, 422), (query, response.text)
    response = await client.get("/leads?email=%ED%A0%80")
    assert response.status_code in (200, 422), response.text
    await still_answers(client)


# --- strict types ----------------------------------------------------------------------------


def refused_field(response: Response, loc: list[Any], type_: str) -> None:
    errors = errors_of(response)
    assert [(e["loc"], e["type"]) for e in errors] == [(loc, type_)], errors


async def test_boolean_operator_id_to_assign_is_422(
    client: AsyncClient, sessions: Sessions
) -> None:
    source = await add_source(client)
    [waiting] = await route_new(sessions, source)
    await add_operator(client)  # id 1: what `true` would have become

    response = await client.post(f"/interactions/{waiting}/assign", json={"operator_id": True})

    refused_field(response, ["body", "operator_id"], "int_type")
    assert (await detail(client, waiting))["status"] == "waiting"


@pytest.mark.parametrize("weight", ["50", 50.0, True])
async def test_string_float_and_boolean_weights_are_422(client: AsyncClient, weight: Any) -> None:
    source = await add_source(client)
    ann = await add_operator(client)
    body = {"weights": [{"operator_id": ann, "weight": weight}]}

    response = await client.put(f"/sources/{source}/operators", json=body)

    refused_field(response, ["body", "weights", 0, "weight"], "int_type")
    assert ok(await client.get(f"/sources/{source}/operators")) == {"weights": []}


async def test_boolean_load_limit_is_422(client: AsyncClient) -> None:
    created = await client.post("/operators", json={"name": "Ann", "load_limit": True})
    refused_field(created, ["body", "load_limit"], "int_type")
    ann = await add_operator(client, load_limit=3)
    patched = await client.patch(f"/operators/{ann}", json={"load_limit": True})
    errors = errors_of(patched)  # a PATCH field is `int | None`: one error per branch
    assert {e["loc"][1] for e in errors} == {"load_limit"}
    assert "int_type" in [e["type"] for e in errors]
    assert ok(await client.get(f"/operators/{ann}"))["load_limit"] == 3


async def test_boolean_source_id_in_post_interactions_is_422(
    client: AsyncClient, channel: AbstractChannel
) -> None:
    await add_source(client)  # id 1: what `true` would have become

    response = await client.post("/interactions", json={"email": "a@x.org", "source_id": True})

    refused_field(response, ["body", "source_id"], "int_type")
    await nothing_published(channel)


async def test_out_of_range_ids_are_422_before_the_database(
    client: AsyncClient, channel: AbstractChannel
) -> None:
    source = await add_source(client)
    big = MAX_DB_INT + 1
    for response, loc in (
        (
            await client.post("/interactions", json={"email": "a@x.org", "source_id": big}),
            ["body", "source_id"],
        ),
        (
            await client.post("/interactions/1/assign", json={"operator_id": big}),
            ["body", "operator_id"],
        ),
        (await put_weights(client, source, {big: 10}), ["body", "weights", 0, "operator_id"]),
        (await client.get(f"/operators/{big}"), ["path", "operator_id"]),
        (await client.patch(f"/operators/{big}", json={"active": False}), ["path", "operator_id"]),
        (await client.delete(f"/operators/{big}"), ["path", "operator_id"]),
        (await client.get(f"/sources/{big}"), ["path", "source_id"]),
        (await client.get(f"/interactions/{big}"), ["path", "interaction_id"]),
        (await client.post(f"/interactions/{big}/close"), ["path", "interaction_id"]),
        (await client.get("/interactions", params={"source_id": big}), ["query", "source_id"]),
    ):
        refused_field(response, loc, "less_than_equal")
    await nothing_published(channel)


# --- unknown fields --------------------------------------------------------------------------


async def test_unknown_field_in_post_interactions_is_422_naming_it(
    client: AsyncClient, channel: AbstractChannel
) -> None:
    source = await add_source(client)
    body = {"email": "a@example.com", "source_id": source, "message": "Hello, I need help"}

    response = await client.post("/interactions", json=body)

    refused_field(response, ["body", "message"], "extra_forbidden")
    await nothing_published(channel)


async def test_unknown_fields_in_operator_source_and_weight_bodies_are_422(
    client: AsyncClient,
) -> None:
    source = await add_source(client)
    ann = await add_operator(client)
    for response, loc in (
        (
            await client.post("/operators", json={"name": "Bob", "load_limit": 1, "limit": 2}),
            ["body", "limit"],
        ),
        (await client.patch(f"/operators/{ann}", json={"status": "off"}), ["body", "status"]),
        (
            await client.post("/sources", json={"identifier": "web", "name": "Web"}),
            ["body", "name"],
        ),
        (
            await client.put(f"/sources/{source}/operators", json={"weights": [], "mode": "add"}),
            ["body", "mode"],
        ),
        (
            await client.put(
                f"/sources/{source}/operators",
                json={"weights": [{"operator_id": ann, "weight": 5, "share": 0.5}]},
            ),
            ["body", "weights", 0, "share"],
        ),
        (
            await client.post("/interactions/1/assign", json={"operator_id": ann, "force": True}),
            ["body", "force"],
        ),
    ):
        refused_field(response, loc, "extra_forbidden")
    assert [o["name"] for o in ok(await client.get("/operators"))] == ["Ann"]


# --- cross-site ------------------------------------------------------------------------------


async def assigned(client: AsyncClient, sessions: Sessions, count: int = 1) -> list[int]:
    """`count` interactions assigned to the operator Ann through the source telegram."""
    ann = await add_operator(client, load_limit=count)
    source = await add_source(client)
    ok(await put_weights(client, source, {ann: 10}))
    return await route_new(sessions, source, count)


async def assert_open(client: AsyncClient, interaction: int) -> None:
    body = await detail(client, interaction)
    assert (body["status"], body["is_active"]) == ("assigned", True)


async def test_text_plain_post_to_close_is_refused_and_leaves_it_open(
    client: AsyncClient, sessions: Sessions
) -> None:
    [interaction] = await assigned(client, sessions)

    for content in (b"", b'{"x": 1}'):
        response = await client.post(
            f"/interactions/{interaction}/close",
            content=content,
            headers={"Content-Type": "text/plain"},
        )
        assert response.status_code == 415
        assert response.json() == {
            "detail": "Content-Type must be application/json, not 'text/plain'"
        }
    await assert_open(client, interaction)


async def test_form_post_and_typeless_body_are_415(client: AsyncClient) -> None:
    form = await client.post("/operators", data={"name": "Eve", "load_limit": "1"})
    assert form.status_code == 415
    assert "application/json" in form.json()["detail"]
    typeless = await client.post("/operators", content=b'{"name": "Eve", "load_limit": 1}')
    assert typeless.status_code == 415
    assert typeless.json() == {"detail": "a request body needs Content-Type: application/json"}
    assert ok(await client.get("/operators")) == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "http://localhost:8080"},
        {"Origin": "https://test.evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://localhost"},
    ],
)
async def test_cross_site_post_is_403(
    client: AsyncClient, sessions: Sessions, headers: dict[str, str]
) -> None:
    [interaction] = await assigned(client, sessions)

    ann, source = (
        ok(await client.get("/operators"))[0]["id"],
        ok(await client.get("/sources"))[0]["id"],
    )
    responses = [
        await client.post(f"/interactions/{interaction}/close", headers=headers),
        await client.post("/operators", json={"name": "Eve", "load_limit": 1}, headers=headers),
        await client.patch(f"/operators/{ann}", json={"active": False}, headers=headers),
        await client.put(f"/sources/{source}/operators", json={"weights": []}, headers=headers),
        await client.delete(f"/operators/{ann}", headers=headers),
    ]

    for response in responses:
        assert response.status_code == 403
        assert response.json() == {"detail": "cross-site request refused"}
    await assert_open(client, interaction)
    assert [o["name"] for o in ok(await client.get("/operators"))] == ["Ann"]
    assert (await client.get("/operators", headers=headers)).status_code == 200  # reads are fine


async def test_same_origin_and_no_origin_changes_still_work(
    client: AsyncClient, sessions: Sessions
) -> None:
    first, second = await assigned(client, sessions, 2)
    same_origin = {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}

    closed = ok(await client.post(f"/interactions/{first}/close", headers=same_origin))
    assert closed["status"] == "closed"
    closed = ok(await client.post(f"/interactions/{second}/close"))  # curl-like: no Origin
    assert closed["status"] == "closed"
    ok(await client.post("/operators", json={"name": "Bob", "load_limit": 1}), 201)
    charset = {"Content-Type": "application/json; charset=utf-8", "Origin": "http://localhost:80"}
    ok(await post_raw(client, "/operators", '{"name": "Cy", "load_limit": 1}'), 201)
    ok(
        await client.post(
            "/operators", content=b'{"name": "Di", "load_limit": 1}', headers=charset
        ),
        201,
    )
    assert len(await seed.operators(sessions)) == 4


# --- the open-API warning --------------------------------------------------------------------


async def test_open_api_warning_is_logged_once_without_a_token(settings: Settings) -> None:
    with capture_logs() as logs:
        async with started_app(settings, wait_for_broker=False):
            pass
    warnings = [e for e in logs if e["event"] == OPEN_API_WARNING]
    assert [e["log_level"] for e in warnings] == ["warning"]


async def test_open_api_warning_is_not_logged_with_a_token(settings: Settings) -> None:
    guarded = settings.model_copy(update={"api_token": SecretStr("s3cret")})
    with capture_logs() as logs:
        async with started_app(guarded, wait_for_broker=False):
            pass
    assert not [e for e in logs if "API_TOKEN" in str(e["event"])]
