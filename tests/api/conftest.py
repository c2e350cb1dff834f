"""The API app started by its real lifespan, with httpx talking to it in process."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from aio_pika.abc import AbstractChannel
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from api.app import create_app
from schemas.settings import Settings

BASE_URL = "http://localhost/api/v1"


@contextlib.asynccontextmanager
async def started_app(
    settings: Settings, *, wait_for_broker: bool = True
) -> AsyncIterator[FastAPI]:
    """create_app + its lifespan (ASGITransport does not run lifespans by itself)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        if wait_for_broker:
            await asyncio.wait_for(app.state.api.broker.connected.wait(), timeout=15)
        yield app


@contextlib.asynccontextmanager
async def http_client(app: FastAPI, token: str | None = None) -> AsyncIterator[AsyncClient]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = ASGITransport(app=app)
    async with AsyncClient(transport=transport, base_url=BASE_URL, headers=headers) as client:
        yield client


@pytest.fixture
async def app(settings: Settings, channel: AbstractChannel) -> AsyncIterator[FastAPI]:
    async with started_app(settings) as running:
        yield running


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with http_client(app) as client:
        yield client
