"""Property-based fuzz of the OpenAPI schema (schemathesis): no input makes the API answer 5xx.

Every operation gets valid and invalid requests (bounded, derandomised, so the run is quick and
repeatable), against the real app on a seeded database; answers must also match the schema.
Hypothesis runs in a thread and sends each request to the app on the test's event loop.
"""

import asyncio
import contextlib
from typing import Any

import httpx
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.generation.case import Case
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.api.helpers import add_operator, add_source, ok, put_weights, route_new

EXAMPLES_PER_MODE = 15
CHECKS = {
    GenerationMode.POSITIVE: [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ],
    # Invalid requests may also get the framework's 400 (a body that is not even UTF-8).
    GenerationMode.NEGATIVE: [not_a_server_error, content_type_conformance],
}


def to_httpx(kwargs: dict[str, Any]) -> dict[str, Any]:
    """schemathesis speaks `requests` keyword arguments; httpx calls raw bytes `content`."""
    if "data" in kwargs:
        kwargs["content"] = kwargs.pop("data")
    kwargs.pop("cookies", None)
    return kwargs


def fuzz(operation: APIOperation[Any, Any, Any, Any], mode: GenerationMode, send: Any) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_MODE,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Case[Any]) -> None:
        kwargs = case.as_transport_kwargs(base_url="http://localhost")
        response = send(kwargs)
        case.validate_response(response, checks=CHECKS[mode], transport_kwargs=kwargs)

    check()


def streams(operation: APIOperation[Any, Any, Any, Any]) -> bool:
    """An event stream never ends, so it has no answer to check here (tests/browser reads it)."""
    responses = operation.definition.raw.get("responses", {}).values()
    return any("text/event-stream" in answer.get("content", {}) for answer in responses)


async def seed_some(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> None:
    """Small ids exist, so generated requests hit real rows as well as unknown ones."""
    ann = await add_operator(client, "Ann", load_limit=2)
    await add_operator(client, "Bob", load_limit=1, active=False)
    source = await add_source(client)
    ok(await put_weights(client, source, {ann: 10}))
    await route_new(sessions, source, 4)


async def test_openapi_fuzz_finds_no_server_errors(
    app: FastAPI, client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await seed_some(client, sessions)
    schema = schemathesis.openapi.from_dict(app.openapi())
    loop = asyncio.get_running_loop()

    def send(kwargs: dict[str, Any]) -> httpx.Response:
        request = client.request(**to_httpx(dict(kwargs)))
        return asyncio.run_coroutine_threadsafe(request, loop).result(timeout=30)

    def run_all() -> int:
        operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
        operations = [operation for operation in operations if not streams(operation)]
        for operation in operations:
            fuzz(operation, GenerationMode.POSITIVE, send)
            # An operation without parameters or body has no invalid request to generate.
            with contextlib.suppress(Unsatisfiable):
                fuzz(operation, GenerationMode.NEGATIVE, send)
        return len(operations)

    assert await asyncio.to_thread(run_all) >= 15
