"""`GET /dashboard` and its data: the page is open, its snapshot and stream need the token, and a
snapshot is aggregates (small and complete) however many operators and waiting interactions."""

import re
from datetime import datetime, timedelta

import pytest
from httpx import AsyncClient
from pydantic import SecretStr
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Interaction, Operator, SourceOperatorSetting
from db.repositories.dashboard import ID_SEARCH_SLACK, DashboardQueries
from db.types import utcnow
from schemas.settings import Settings
from tests.api.conftest import http_client, started_app
from tests.api.helpers import add_operator, add_source, ok, put_weights, route_new
from tests.ops.conftest import until
from tests.support import seed
from tests.support.amqp import Bot
from worker.app import Worker

Sessions = async_sessionmaker[AsyncSession]
TOKEN = "dashboard-token"
UNREACHABLE_BROKER = "amqp://guest:guest@127.0.0.1:1/"
SNAPSHOT_BOUND = 64 * 1024  # bytes of JSON with 200 operators and 1,000 waiting interactions


@pytest.fixture
def guarded(settings: Settings) -> Settings:
    return settings.model_copy(update={"api_token": SecretStr(TOKEN)})


async def snapshot(client: AsyncClient, window: int = 3600) -> dict[str, object]:
    body = ok(await client.get("/dashboard/snapshot", params={"window": window}))
    assert isinstance(body, dict)
    return body


async def test_the_page_is_open_and_strict_its_data_needs_the_token(guarded: Settings) -> None:
    async with started_app(guarded, wait_for_broker=False) as app, http_client(app) as client:
        page = await client.get("http://localhost/dashboard")
        stream = await client.get("/dashboard/stream")
        data = await client.get("/dashboard/snapshot")
        script = await client.get("http://localhost/dashboard/static/dashboard.js")
        vendor = await client.get("http://localhost/dashboard/static/vendor/uPlot.iife.min.js")
    async with started_app(guarded, wait_for_broker=False) as app, http_client(app, TOKEN) as c:
        allowed = await c.get("/dashboard/snapshot")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "unsafe-inline" not in policy and "http" not in policy  # nothing from elsewhere
    html = page.text
    assert re.findall(r"<script(?![^>]*\bsrc=)", html) == []  # no inline script
    assert "<style" not in html and " style=" not in html and "://" not in html
    assert (stream.status_code, data.status_code) == (401, 401)
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert vendor.text.startswith("/*! https://github.com/leeoniya/uPlot (v1.6.32) */")
    assert allowed.status_code == 200


async def test_the_snapshot_shows_loads_queue_shares_and_flow(
    client: AsyncClient, sessions: Sessions
) -> None:
    ann = await add_operator(client, "Ann", load_limit=2)
    bob = await add_operator(client, "Bob", load_limit=1, active=False)
    source = await add_source(client, "telegram")
    quiet = await add_source(client, "email")
    ok(await put_weights(client, source, {ann: 30, bob: 10}))
    before = utcnow()
    await route_new(sessions, source, 3)  # two for Ann, one waits (Bob is inactive)

    body = await snapshot(client, window=300)

    assert body["window_s"] == 300
    assert body["broker"] == "ok"
    assert body["dead_letters"] == 0
    assert body["waiting_count"] == 1
    assert body["operators"] == [
        {
            "id": ann,
            "name": "Ann",
            "active": True,
            "current_load": 2,
            "load_limit": 2,
            "offered": 0,
            "assigned_last_hour": 2,
        },
        {
            "id": bob,
            "name": "Bob",
            "active": False,
            "current_load": 0,
            "load_limit": 1,
            "offered": 0,
            "assigned_last_hour": 0,
        },
    ]
    telegram, email = body["sources"]  # type: ignore[misc]
    assert telegram["id"] == source and telegram["waiting"] == 1
    assert telegram["max_wait_s"] is None
    assert telegram["in_window"] == 3  # two assigned and the waiting one
    assert datetime.fromisoformat(telegram["oldest_waiting_at"]) >= before
    assert telegram["shares"] == [
        {"operator_id": ann, "weight": 30, "configured": 1.0, "observed": 2},
        {"operator_id": bob, "weight": 10, "configured": 0.0, "observed": 0},
    ]
    assert email == {
        "id": quiet,
        "identifier": "email",
        "max_wait_s": None,
        "waiting": 0,
        "oldest_waiting_at": None,
        "in_window": 0,
        "shares": [],
    }
    flow = body["flow"]
    assert isinstance(flow, dict) and flow["seconds"] == 300
    assert sum(count for _, count in flow["points"]) == 3
    assert all(second >= int(before.timestamp()) for second, _ in flow["points"])


async def test_the_window_is_one_of_the_offered_ones(client: AsyncClient) -> None:
    assert (await client.get("/dashboard/snapshot", params={"window": 301})).status_code == 422
    assert (await client.get("/dashboard/stream", params={"window": 0})).status_code == 422
    assert (await snapshot(client, window=86400))["window_s"] == 86400


async def test_the_snapshot_stays_small_with_200_operators_and_1000_waiting(
    client: AsyncClient, sessions: Sessions
) -> None:
    sources = [await add_source(client, f"source-{i}") for i in range(4)]
    overflow = await add_source(client, "overflow")  # no weights: everything sent here waits
    async with sessions() as session, session.begin():
        operators = [Operator(name=f"Operator {i:03}", load_limit=3) for i in range(200)]
        session.add_all(operators)
        await session.flush()
        session.add_all(
            SourceOperatorSetting(source_id=sources[(i + k) % 4], operator_id=o.id, weight=10 + k)
            for i, o in enumerate(operators)
            for k in range(2)
        )
    for source in sources:
        await route_new(sessions, source, 50)
    for _ in range(4):
        await route_new(sessions, overflow, 250)

    response = await client.get("/dashboard/snapshot")

    assert response.status_code == 200
    body = response.json()
    assert len(body["operators"]) == 200
    assert body["waiting_count"] == 1000
    assert sum(s["waiting"] for s in body["sources"]) == 1000
    assert sum(len(s["shares"]) for s in body["sources"]) == 400
    assert sum(o["current_load"] for o in body["operators"]) == 200
    assert len(response.content) < SNAPSHOT_BOUND, len(response.content)


async def test_windows_start_at_an_id_found_by_binary_search(
    client: AsyncClient, sessions: Sessions
) -> None:
    async with sessions() as session, session.begin():
        assert await DashboardQueries(session).first_id_since(utcnow()) == 0  # no rows yet
    source = await add_source(client)
    ids = await route_new(sessions, source, 40)
    now = utcnow()
    async with sessions() as session, session.begin():
        for age, interaction_id in zip(range(40, 0, -1), ids, strict=True):
            created = now - timedelta(minutes=age)
            await session.execute(
                update(Interaction)
                .where(Interaction.id == interaction_id)
                .values(created_at=created)
            )

    async with sessions() as session, session.begin():
        queries = DashboardQueries(session)
        found = {
            age: await queries.first_id_since(now - timedelta(minutes=age)) for age in (45, 25, 1)
        }
        beyond = await queries.first_id_since(now + ID_SEARCH_SLACK + timedelta(minutes=1))

    assert found == {45: ids[0], 25: ids[15], 1: ids[39]}  # the slack takes at most 30 s more
    assert beyond == ids[-1] + 1


async def test_dead_letters_waiting_are_counted(
    client: AsyncClient, sessions: Sessions, worker: Worker, bot: Bot
) -> None:
    await bot.raw("interaction.create", b"{not json")

    async def counted() -> bool:
        return (await snapshot(client))["dead_letters"] == 1

    await until(counted)  # nothing announces a dead letter but the queue itself


async def test_without_the_broker_the_page_still_has_the_database(
    settings: Settings, sessions: Sessions
) -> None:
    await seed.add_operator(sessions, "Ann", 1)
    down = settings.model_copy(update={"amqp_url": UNREACHABLE_BROKER})
    async with started_app(down, wait_for_broker=False) as app, http_client(app) as client:
        body = await snapshot(client)

    assert (body["broker"], body["dead_letters"]) == ("down", None)
    assert [o["name"] for o in body["operators"]] == ["Ann"]  # type: ignore[union-attr]
