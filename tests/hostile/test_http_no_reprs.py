"""No answer shows a Python object's repr (`<function max_length_validator at 0x7f…>`): every
operation of the OpenAPI document gets hostile values in each body field, the whole body, each
path and each query parameter, and no answer may hold a repr or a memory address."""

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from tests.api.helpers import add_operator, add_source

REPR = re.compile(r"0x[0-9a-fA-F]{6,}|\bobject at\b|<function |<class |<bound method |<built-in ")
HOSTILE: list[Any] = ["x" * 3000, "", "  ", ["x"], {"k": "v"}, 1.5, True, -1, 2**70, None, "\x00"]
PARAMETER = re.compile(r"\{[^}]+\}")


def _schema(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        return dict(document["components"]["schemas"][name])
    return schema


def _streams(operation: dict[str, Any]) -> bool:
    return any("text/event-stream" in r.get("content", {}) for r in operation["responses"].values())


def requests(app: FastAPI) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(method, URL, httpx keyword arguments) for every hostile value in every place."""
    document = app.openapi()
    for template, operations in document["paths"].items():
        for method, operation in operations.items():
            if _streams(operation):  # never ends; tests/browser reads it
                continue
            path = PARAMETER.sub("1", template)
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            fields = list(_schema(document, body["schema"]).get("properties", {})) if body else []
            parameters = operation.get("parameters", [])
            for value in HOSTILE:
                if body is not None:
                    yield method, path, {"json": value}
                for field in fields:
                    yield method, path, {"json": {field: value}}
                    yield method, path, {"json": {field: [{"operator_id": value, "weight": value}]}}
                for parameter in parameters:
                    text = quote(str(value), safe="")
                    if parameter["in"] == "path":
                        place = "{" + parameter["name"] + "}"
                        url = PARAMETER.sub("1", template.replace(place, text))
                        yield method, url, {"json": {}} if body else {}
                    elif parameter["in"] == "query":
                        yield method, path, {"params": {parameter["name"]: str(value)}}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_no_answer_shows_an_object_repr(app: FastAPI, client: AsyncClient) -> None:
    await add_source(client)
    await add_operator(client)
    statuses: dict[int, int] = {}

    for method, url, kwargs in requests(app):
        response = await client.request(method.upper(), f"http://localhost{url}", **kwargs)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, (method, url, kwargs, response.text[:300])
        assert not REPR.search(response.text), (method, url, kwargs, response.text[:1000])

    assert statuses[422] > 500, statuses  # the hostile values did reach the validators
