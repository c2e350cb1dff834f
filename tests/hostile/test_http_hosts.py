"""`API_ALLOWED_HOSTS`: a DNS-rebinding page never reaches the API, whatever route it calls;
the local names in any of their forms do, and `/health` answers any host."""

import os
import subprocess
from pathlib import Path

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.settings import Settings
from tests.api.conftest import http_client, started_app
from tests.api.helpers import ok
from tests.support import seed
from tests.support.processes import LEADROUTER

Sessions = async_sessionmaker[AsyncSession]
REBIND = "rebind.attacker.example"
# The check happens before any route: one database is enough.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def refused(host: str) -> dict[str, str]:
    return {"detail": f"Host {host!r} is not served here: add its name to API_ALLOWED_HOSTS"}


@sqlite_only
async def test_dns_rebinding_page_cannot_create_an_operator(
    client: AsyncClient, sessions: Sessions, settings: Settings
) -> None:
    """No API_TOKEN (the default). The attacker's name now resolves to 127.0.0.1, so to the
    browser its page and this API are one origin: `Origin` matches `Host`, the cross-site
    guard has nothing to refuse. Only the name in `Host` gives it away."""
    assert settings.api_token is None
    page = f"http://{REBIND}:8000"
    same_origin = {"Origin": page, "Sec-Fetch-Site": "same-origin"}

    response = await client.post(
        f"{page}/api/v1/operators", json={"name": "Eve", "load_limit": 1}, headers=same_origin
    )

    assert response.status_code == 400
    assert response.json() == refused(f"{REBIND}:8000")
    assert await seed.operators(sessions) == {}
    ok(await client.post("/operators", json={"name": "Ann", "load_limit": 1}), 201)


@sqlite_only
@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LOCALHOST:8000",
        "localhost.:8000",
        "127.0.0.1",
        "127.0.0.1:8000",
        "[::1]",
        "[::1]:8000",
        "[0:0:0:0:0:0:0:1]:8000",
    ],
)
async def test_the_local_names_are_served_in_every_form(client: AsyncClient, host: str) -> None:
    assert ok(await client.get("/operators", headers={"Host": host})) == []
    assert ok(await client.get("http://localhost/", headers={"Host": host}))["status"] == "ok"


ROUTES = [
    ("GET", "/"),
    ("GET", "/docs"),
    ("GET", "/docs/static/swagger-ui.css"),
    ("GET", "/openapi.json"),
    ("GET", "/asyncapi.json"),
    ("GET", "/metrics"),
    ("GET", "/dashboard"),
    ("GET", "/api/v1/operators"),
    ("GET", "/api/v1/dashboard/snapshot"),
    ("POST", "/api/v1/interactions/1/close"),
    ("DELETE", "/api/v1/operators/1"),
    ("GET", "/nowhere"),
]


@sqlite_only
@pytest.mark.parametrize(
    "host",
    [
        REBIND,
        f"{REBIND}:8000",
        "localhost.attacker.example",
        "127.0.0.1.nip.io:8000",
        "127.1",
        "[::2]:8000",
        "localhost:80a",
        "[::1",
        "",
    ],
)
async def test_other_hosts_get_400_on_every_route_but_health(
    client: AsyncClient, host: str
) -> None:
    for method, path in ROUTES:
        response = await client.request(method, f"http://localhost{path}", headers={"Host": host})
        assert (response.status_code, response.json()) == (400, refused(host)), (method, path)
    health = await client.get("http://localhost/health", headers={"Host": host})
    assert (health.status_code, health.json()["database"]) == (200, "ok")


@sqlite_only
async def test_api_allowed_hosts_names_the_hosts_served(settings: Settings) -> None:
    named = Settings(
        amqp_url=settings.amqp_url,
        database_url=settings.database_url,
        api_allowed_hosts="API.example.com, 10.1.2.3",
        _env_file=None,  # type: ignore[call-arg]
    )
    async with started_app(named, wait_for_broker=False) as app, http_client(app) as client:
        for host in ("api.example.com", "api.example.com:8443", "10.1.2.3:8000"):
            assert ok(await client.get("/operators", headers={"Host": host})) == []
        for host in ("localhost:8000", "127.0.0.1", "other.example.com"):
            response = await client.get("/operators", headers={"Host": host})
            assert (response.status_code, response.json()) == (400, refused(host))


@sqlite_only
async def test_a_star_serves_any_host(settings: Settings) -> None:
    anyone = settings.model_copy(update={"api_allowed_hosts": "*"})
    async with started_app(anyone, wait_for_broker=False) as app, http_client(app) as client:
        for host in (REBIND, "localhost", "[::1]:8000"):
            assert ok(await client.get("/operators", headers={"Host": host})) == []


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("http://api.example.com", "'http://api.example.com' is not a host name or IP address"),
        ("localhost,api.example.com:8000", "'api.example.com:8000' is not a host name"),
        (",", "names no host"),
    ],
)
def test_a_bad_value_stops_with_one_clear_line(value: str, reason: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("API_")}
    result = subprocess.run(
        [LEADROUTER, "api"],
        cwd=tmp_path,  # no .env from the repository
        env=env | {"API_ALLOWED_HOSTS": value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("leadrouter: invalid settings: API_ALLOWED_HOSTS: Value error, ")
    assert reason in line
