"""Requests with invented methods and paths cannot grow `/metrics`: each request is labelled by
a known method (or `other`) and a route template (or `unmatched`), so the series stay few."""

import re
import string
from random import Random

import pytest
from httpx import AsyncClient

from api.metrics import KNOWN_METHODS, OTHER_METHOD, UNMATCHED_ROUTE
from tests.api.helpers import ok

REQUESTS = re.compile(
    r'^leadrouter_api_requests_total\{method="([^"]*)",route="([^"]*)",status="([^"]*)"\}', re.M
)
ROUNDS = 1000  # three requests each


def label_sets(text: str) -> set[tuple[str, str, str]]:
    return {(m[1], m[2], m[3]) for m in REQUESTS.finditer(text)}


def series(text: str) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_invented_methods_and_paths_leave_the_metrics_bounded(client: AsyncClient) -> None:
    rng = Random(21)
    ok(await client.get("/operators"))
    await client.get("http://localhost/metrics")  # so `before` counts its own route too
    before = (await client.get("http://localhost/metrics")).text

    for _ in range(ROUNDS):
        method = "".join(rng.choices(string.ascii_uppercase, k=rng.randint(3, 20)))
        path = f"/{rng.getrandbits(64):x}/{rng.getrandbits(32):x}"
        assert (await client.request(method, f"http://localhost{path}")).status_code == 404
        response = await client.request(method, "http://localhost/api/v1/operators")
        assert response.status_code == 405
        assert (await client.get(f"http://localhost/api/v1{path}")).status_code == 404

    after = (await client.get("http://localhost/metrics")).text
    new = label_sets(after) - label_sets(before)
    assert new == {
        (OTHER_METHOD, UNMATCHED_ROUTE, "404"),
        (OTHER_METHOD, "/api/v1/operators", "405"),
        ("GET", UNMATCHED_ROUTE, "404"),
    }
    assert {method for method, _, _ in label_sets(after)} <= KNOWN_METHODS | {OTHER_METHOD}
    # Three label sets, each a counter and a latency histogram: a few dozen lines in all.
    assert series(after) - series(before) < 100, series(after) - series(before)
    assert len(after) < 50_000  # 413 MB after 20,000 invented methods when each had a series
