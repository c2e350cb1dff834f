"""`GET /asyncapi.json`: the generated AsyncAPI document, open like `/health`."""

from fastapi import FastAPI
from httpx import AsyncClient
from pydantic import SecretStr

from messaging.asyncapi import asyncapi_document
from schemas.settings import Settings
from tests.api.conftest import http_client, started_app


async def test_serves_the_generated_document(app: FastAPI, client: AsyncClient) -> None:
    response = await client.get("http://localhost/asyncapi.json")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == asyncapi_document()


async def test_needs_no_token(settings: Settings) -> None:
    guarded = settings.model_copy(update={"api_token": SecretStr("s3cret-token")})
    async with started_app(guarded, wait_for_broker=False) as app, http_client(app) as client:
        response = await client.get("http://localhost/asyncapi.json")

    assert response.status_code == 200
    assert response.json()["asyncapi"] == "3.0.0"
