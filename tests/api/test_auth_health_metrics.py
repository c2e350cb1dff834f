"""API_TOKEN on every /api/v1 route and /metrics, the open / and /health, and a broker that is
down."""

import re

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.routes.root import MESSAGE
from db.models import OutboxEvent
from schemas.settings import Settings
from tests.api.conftest import http_client, started_app
from tests.api.helpers import add_operator, add_source, ok, put_weights, route_new
from tests.support import seed

Sessions = async_sessionmaker[AsyncSession]
TOKEN = "s3cret-token"
UNREACHABLE_BROKER = "amqp://guest:guest@127.0.0.1:1/"


def every_operation(app: FastAPI) -> list[tuple[str, str]]:
    paths = app.openapi()["paths"]
    return [
        (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
        for path, operations in paths.items()
        if path.startswith("/api/v1")
        for method in operations
    ]


@pytest.fixture
def guarded(settings: Settings) -> Settings:
    return settings.model_copy(update={"api_token": SecretStr(TOKEN)})


async def test_token_guards_every_api_route(guarded: Settings) -> None:
    async with started_app(guarded, wait_for_broker=False) as app, http_client(app) as client:
        operations = every_operation(app)
        assert len(operations) >= 17
        for method, path in operations:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
                response = await client.request(
                    method, "http://localhost" + path, headers=headers, content=b"{not json"
                )
                assert response.status_code == 401, (method, path, headers)
                assert response.headers["www-authenticate"] == "Bearer"
                assert response.json() == {"detail": "missing or invalid bearer token"}
        assert (await client.get("http://localhost/api/v1/nowhere")).status_code == 401
        assert (await client.get("http://localhost/health")).status_code == 200
        assert (await client.get("http://localhost/docs")).status_code == 200
        schema = (await client.get("http://localhost/openapi.json")).json()
        assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    async with (
        started_app(guarded, wait_for_broker=False) as app,
        http_client(app, TOKEN) as client,
    ):
        assert ok(await client.get("/operators")) == []


async def test_health_reports_database_and_broker(app: FastAPI, client: AsyncClient) -> None:
    response = await client.get("http://localhost/health")
    assert (response.status_code, response.json()) == (
        200,
        {"status": "ok", "database": "ok", "broker": "ok"},
    )


async def test_api_starts_and_serves_without_a_broker(
    settings: Settings, sessions: Sessions
) -> None:
    """Reads and changes work; HTTP ingress is 503; events wait in the outbox for the relay."""
    down = settings.model_copy(update={"amqp_url": UNREACHABLE_BROKER})
    async with started_app(down, wait_for_broker=False) as app, http_client(app) as client:
        health = await client.get("http://localhost/health")
        assert health.json() == {"status": "ok", "database": "ok", "broker": "down"}
        ann = await add_operator(client, load_limit=1)
        source = await add_source(client)
        ok(await put_weights(client, source, {ann: 10}))
        [interaction] = await route_new(sessions, source)

        refused = await client.post(
            "/interactions", json={"email": "a@example.com", "source_id": source}
        )
        assert refused.status_code == 503
        assert "broker" in refused.json()["detail"]
        ok(await client.post(f"/interactions/{interaction}/close"))
    assert await seed.assigned_counts(sessions) == {}
    async with sessions() as session:
        rows = (await session.scalars(select(OutboxEvent).order_by(OutboxEvent.id))).all()
    assert [(r.routing_key, r.published_at) for r in rows][-1] == ("interaction.closed", None)


async def test_metrics_are_served_from_the_apps_own_registry(
    settings: Settings, client: AsyncClient, sessions: Sessions
) -> None:
    source = await add_source(client)
    await route_new(sessions, source, 2)
    ok(await client.get("/operators"))

    text = (await client.get("http://localhost/metrics")).text

    assert (
        'leadrouter_api_requests_total{method="GET",route="/api/v1/operators",status="200"} 1.0'
        in text
    )
    assert "leadrouter_waiting_interactions 2.0" in text
    assert "leadrouter_api_broker_up 1.0" in text
    async with started_app(settings) as other, http_client(other) as other_client:
        fresh = (await other_client.get("http://localhost/metrics")).text
    assert 'route="/api/v1/operators"' not in fresh


async def test_metrics_need_the_token_when_it_is_set(guarded: Settings) -> None:
    """They name operators and their loads."""
    async with started_app(guarded, wait_for_broker=False) as app, http_client(app) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            response = await client.get("http://localhost/metrics", headers=headers)
            assert (response.status_code, response.json()) == (
                401,
                {"detail": "missing or invalid bearer token"},
            )
            assert response.headers["www-authenticate"] == "Bearer"
        allowed = await client.get(
            "http://localhost/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert allowed.status_code == 200
        assert "leadrouter_api_requests_total" in allowed.text


@pytest.mark.parametrize("token", [None, TOKEN])
async def test_root_answers_ok_without_a_token(settings: Settings, token: str | None) -> None:
    configured = settings.model_copy(update={"api_token": SecretStr(token) if token else None})
    async with started_app(configured, wait_for_broker=False) as app, http_client(app) as client:
        response = await client.get("http://localhost/")
    assert (response.status_code, response.json()) == (200, {"status": "ok", "message": MESSAGE})
