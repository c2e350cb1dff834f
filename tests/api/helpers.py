"""Set-up over HTTP as an admin would do it, and interactions routed by the worker's Router."""

import uuid
from random import Random
from typing import Any

from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.routing_store.sessions import session_store
from routing.commands import CreateRequest, Envelope
from routing.outcomes import Routed
from routing.router import Router
from schemas.messages import CreateInteraction


def ok(response: Response, status: int = 200) -> Any:
    """The JSON body of a response that must have this status (the body shown if not)."""
    assert response.status_code == status, (response.status_code, response.text)
    return response.json() if response.content else None


async def add_operator(
    client: AsyncClient, name: str = "Ann", load_limit: int = 5, active: bool = True
) -> int:
    body = {"name": name, "load_limit": load_limit, "active": active}
    created = ok(await client.post("/operators", json=body), 201)
    assert isinstance(created, dict)
    return int(created["id"])


async def add_source(client: AsyncClient, identifier: str = "telegram") -> int:
    created = ok(await client.post("/sources", json={"identifier": identifier}), 201)
    assert isinstance(created, dict)
    return int(created["id"])


async def put_weights(client: AsyncClient, source_id: int, weights: dict[int, int]) -> Response:
    body = {"weights": [{"operator_id": o, "weight": w} for o, w in weights.items()]}
    return await client.put(f"/sources/{source_id}/operators", json=body)


async def route_new(
    sessions: async_sessionmaker[AsyncSession], source_id: int, count: int = 1
) -> list[int]:
    """`count` interactions created exactly as the worker creates them; their ids, in order."""
    requests = [
        CreateRequest(
            key,
            CreateInteraction(
                email=f"lead{key}-{uuid.uuid4().hex[:6]}@example.com", source_id=source_id
            ),
            Envelope(message_id=uuid.uuid4().hex),
        )
        for key in range(count)
    ]
    async with sessions() as session, session.begin():
        outcome = await Router(session_store(session), Random(3)).route_batch(requests, [])
    results = [outcome.results[r.key] for r in requests]
    assert all(isinstance(r, Routed) for r in results)
    return [r.interaction_id for r in results if isinstance(r, Routed)]


async def detail(client: AsyncClient, interaction_id: int) -> Any:
    body = ok(await client.get(f"/interactions/{interaction_id}"))
    assert isinstance(body, dict)
    return body
