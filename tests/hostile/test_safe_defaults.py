"""Secure by default: nothing listens beyond 127.0.0.1 unless asked, no password is printed,
and installs are reproducible (every dependency pinned in constraints.txt).

Each test guards one default that is easy to undo by accident: a port published on every
interface, a `print` of a settings URL, a dependency added to pyproject.toml but not pinned.
"""

import asyncio
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Mapping
from enum import StrEnum
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
import yaml  # type: ignore[import-untyped]
from packaging.requirements import Requirement
from pydantic import BaseModel, field_validator
from sqlalchemy.engine import make_url

from cli.logging_setup import json_line, redact_secrets
from cli.main import build_parser
from schemas.events import InteractionStatus
from schemas.redact import MASK, redact, redacting_excepthook
from tests.support import databases

ROOT = Path(__file__).resolve().parents[2]
LEADROUTER = str(Path(sys.executable).with_name("leadrouter"))
SECRET = "s3cr3t-pw"
LOOPBACK = "127.0.0.1"
BIND_VARIABLES = ("API_BIND", "RABBITMQ_BIND", "RABBITMQ_MANAGEMENT_BIND")
# Every published port (the `cluster` profile's too: each node's AMQP, the cluster's management
# UI and its API).
PUBLISHED = {
    "rabbitmq": [LOOPBACK, LOOPBACK],
    "api": [LOOPBACK],
    "rabbitmq-1": [LOOPBACK, LOOPBACK],
    "rabbitmq-2": [LOOPBACK],
    "rabbitmq-3": [LOOPBACK],
    "api-cluster": [LOOPBACK],
}


# --- docker-compose.yml: published ports --------------------------------------------------


def _interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR-default}`, enough for our file."""

    def value(match: re.Match[str]) -> str:
        name, colon, default = match.group(1), match.group(2), match.group(3)
        if name in env and (env[name] or not colon):
            return env[name]
        return default or ""

    return re.sub(r"\$\{(\w+)(?:(:?)-([^}]*))?\}", value, text)


def _env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs if not k.lstrip().startswith("#")}


def _host_ips(config: Mapping[str, Any]) -> dict[str, list[str | None]]:
    """service -> the host address of each published port (None: every interface)."""
    found: dict[str, list[str | None]] = {}
    for name, service in config["services"].items():
        for port in service.get("ports", []):
            if isinstance(port, dict):  # the long syntax (docker compose v2's `config`)
                found.setdefault(name, []).append(port.get("host_ip") or None)
            else:  # "[host_ip:]host_port:container_port[/proto]"
                parts = str(port).split(":")
                found.setdefault(name, []).append(parts[0] if len(parts) == 3 else None)
    return found


@pytest.mark.parametrize("env_file", [None, ".env.example"])
def test_compose_publishes_every_port_on_loopback_only(env_file: str | None) -> None:
    env = _env_file(ROOT / env_file) if env_file else {}
    config = yaml.safe_load(_interpolate((ROOT / "docker-compose.yml").read_text(), env))
    published = _host_ips(config)
    assert set(published) == set(PUBLISHED)  # postgres and the workers: not at all
    assert published == PUBLISHED


def test_compose_opens_a_port_only_when_asked() -> None:
    env = {"API_BIND": "0.0.0.0"}
    config = yaml.safe_load(_interpolate((ROOT / "docker-compose.yml").read_text(), env))
    assert _host_ips(config) == {**PUBLISHED, "api": ["0.0.0.0"], "api-cluster": ["0.0.0.0"]}


@pytest.mark.parametrize("env_file", [None, ".env.example"])
def test_docker_compose_config_agrees(env_file: str | None, tmp_path: Path) -> None:
    """The same check through docker-compose itself, when it is installed (CI installs it)."""
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed")
    empty = tmp_path / "empty.env"
    empty.write_text("")
    env = {k: v for k, v in os.environ.items() if k not in BIND_VARIABLES}
    result = subprocess.run(
        ["docker-compose", "--env-file", str(ROOT / env_file if env_file else empty), "config"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    published = _host_ips(yaml.safe_load(result.stdout))
    assert published == PUBLISHED


def test_containers_listen_on_all_their_interfaces_for_the_compose_network() -> None:
    """Inside a container 0.0.0.0 is needed and harmless: only the host publish matters."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert services["worker"]["command"] == ["worker", "--metrics-host", "0.0.0.0"]
    assert services["api"]["command"][:3] == ["api", "--host", "0.0.0.0"]


# --- the processes' own listeners ---------------------------------------------------------


def test_worker_metrics_and_api_default_to_loopback() -> None:
    from cli import worker_cmd

    parser = build_parser()
    assert parser.parse_args(["worker"]).metrics_host == LOOPBACK
    assert parser.parse_args(["api"]).host == LOOPBACK
    assert worker_cmd.DEFAULT_METRICS_HOST == LOOPBACK
    run_worker = inspect.signature(worker_cmd.run_worker).parameters
    observed = inspect.signature(worker_cmd.observed).parameters
    assert run_worker["metrics_host"].default == observed["host"].default == LOOPBACK


# --- no password in any output ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql+asyncpg://user:pw@host/db", "postgresql+asyncpg://user:***@host/db"),
        ("amqp://guest:guest@host:5672/", "amqp://guest:***@host:5672/"),
        ("amqps://u:p%40ss@host/vh", "amqps://u:***@host/vh"),
        ("redis://:pw@host", "redis://:***@host"),
        ("amqp://u:p@ss@host/", "amqp://u:***@host/"),  # an unencoded @ in the password
        ("amqp://u:pa/ss@host/", "amqp://u:***@host/"),  # an unencoded / in the password
        (
            "from amqp://a:one@h1/ to postgresql://b:two@h2/db, done",
            "from amqp://a:***@h1/ to postgresql://b:***@h2/db, done",
        ),
        ("amqp://guest@host/", "amqp://guest@host/"),  # no password: nothing to hide
        ("sqlite+aiosqlite:///./leadrouter.db", "sqlite+aiosqlite:///./leadrouter.db"),
        ("Uvicorn running on http://127.0.0.1:8000", "Uvicorn running on http://127.0.0.1:8000"),
        ("client@example.com took 3 ms", "client@example.com took 3 ms"),
    ],
)
def test_redact_masks_the_password_of_every_url(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_redact_takes_linear_time_on_hostile_text() -> None:
    """Log lines can quote what a stranger sent; masking must not become a way to stall.

    Not a speed target (those live in bench/): a hang detector. The expression is linear and
    takes about a millisecond here; the backtracking one it replaced took seconds per line."""
    for text in ("://a:" * 13_000, ("://a:" + "x" * 20) * 2_500, "://a:" + "x@" * 30_000):
        started = time.perf_counter()
        redact(text)
        assert time.perf_counter() - started < 2.0


def test_log_processor_masks_events_values_and_nested_values() -> None:
    error = ConnectionError(f"cannot reach amqp://guest:{SECRET}@broker/")
    event = {
        "event": f"connecting to postgresql+asyncpg://app:{SECRET}@db/leadrouter",
        "url": f"amqp://guest:{SECRET}@broker/",
        "nested": {"urls": [f"amqp://a:{SECRET}@h/", 3], "n": 1},
        "error": error,
        "operator_id": 7,
        "email": "client@example.com",
    }
    out = redact_secrets(None, "info", dict(event))
    assert SECRET not in repr(out)
    assert out["event"] == f"connecting to postgresql+asyncpg://app:{MASK}@db/leadrouter"
    assert out["nested"] == {"urls": [f"amqp://a:{MASK}@h/", 3], "n": 1}
    assert out["error"] == f"ConnectionError('cannot reach amqp://guest:{MASK}@broker/')"
    assert (out["operator_id"], out["email"]) == (7, "client@example.com")


def test_log_processor_leaves_clean_values_as_they_are() -> None:
    values = {"event": "worker started", "batch": [1, 2], "ids": (1,), "meta": {"a": "b"}}
    out = redact_secrets(None, "info", dict(values))
    assert all(out[key] is value for key, value in values.items())


def test_log_processor_masks_str_subclasses_and_keeps_clean_ones() -> None:
    """A StrEnum (an interaction's status) is text: masked like any string, kept when clean."""

    class Where(StrEnum):
        BROKER = f"amqp://guest:{SECRET}@broker/"

    out = redact_secrets(None, "info", {"where": Where.BROKER, "status": InteractionStatus.WAITING})
    assert out["where"] == f"amqp://guest:{MASK}@broker/"
    assert out["status"] is InteractionStatus.WAITING


@pytest.mark.parametrize(
    "value",
    [
        "id-\udc80-lone-surrogate",  # a message_id decoded with surrogateescape
        2**70,  # beyond orjson's 64-bit integers
        {1: "int keys", None: "a None key"},
    ],
)
def test_json_log_line_renders_what_orjson_alone_would_refuse(value: object) -> None:
    line = json_line({"event": "x", "value": value}, default=repr)
    assert json.loads(line)["event"] == "x"


LOGGING_SCRIPT = f"""
import logging, structlog
from cli.logging_setup import configure_logging

def fail(url):
    raise RuntimeError("cannot connect to " + url)

configure_logging(__import__("sys").argv[1])
url = "postgresql+asyncpg://app:{SECRET}@db/leadrouter"
structlog.get_logger().info("ours", url=url, nested={{"u": [url]}})
logging.getLogger("a.library").warning("theirs: %s", url)
try:
    fail(url)
except RuntimeError:
    structlog.get_logger().exception("ours failed")
    logging.getLogger("a.library").exception("theirs failed")
"""


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_every_log_line_is_masked(log_format: str) -> None:
    """Our lines and the libraries', with tracebacks, in both formats, as configured for real."""
    result = subprocess.run(
        [sys.executable, "-c", LOGGING_SCRIPT, log_format],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    output = result.stdout + result.stderr
    assert SECRET not in output
    # the URL is still there, masked: ours twice, theirs, and each of the two tracebacks
    assert output.count(f"app:{MASK}@db") == 5, output


def test_uncaught_exception_traceback_is_masked(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        raise ValueError(f"bad URL amqp://guest:{SECRET}@broker/")
    except ValueError as exc:
        redacting_excepthook(type(exc), exc, exc.__traceback__)
    err = capsys.readouterr().err
    assert SECRET not in err
    assert f"ValueError: bad URL amqp://guest:{MASK}@broker/" in err
    assert "Traceback (most recent call last)" in err


def _run_cli(
    args: list[str], env: Mapping[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    keep = {k: v for k, v in os.environ.items() if k not in {"AMQP_URL", "DATABASE_URL"}}
    return subprocess.run(
        [LEADROUTER, *args],
        cwd=cwd,  # no .env from the repository
        env={**keep, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def _create_empty_database(admin_url: str) -> str:
    name = f"leadrouter_test_{uuid.uuid4().hex[:10]}"
    admin = make_url(admin_url).set(drivername="postgresql")
    connection = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return name


@pytest.mark.postgres
async def test_db_upgrade_never_prints_the_password(
    postgres_admin_url: str | None, tmp_path: Path
) -> None:
    """PostgreSQL's trust authentication ignores the password, so the URL can carry any."""
    if postgres_admin_url is None:
        pytest.skip("needs TEST_POSTGRES_URL")
    name = await _create_empty_database(postgres_admin_url)
    url = make_url(postgres_admin_url).set(
        drivername="postgresql+asyncpg", password=SECRET, database=name
    )
    database_url = url.render_as_string(hide_password=False)
    assert SECRET in database_url
    try:
        for log_format in ("json", "console"):  # the first run migrates, the second has nothing
            env = {"DATABASE_URL": database_url, "LOG_FORMAT": log_format}
            result = await asyncio.to_thread(_run_cli, ["db", "upgrade"], env, tmp_path)
            output = result.stdout + result.stderr
            assert result.returncode == 0, output
            assert SECRET not in output
            assert f"{url.username}:{MASK}@" in result.stdout
    finally:
        await databases.drop_postgres_database(postgres_admin_url, url.render_as_string(False))


def test_db_upgrade_failure_never_prints_the_password(tmp_path: Path) -> None:
    """Nothing listens on port 1: the error and its traceback go out, the password does not."""
    env = {
        "DATABASE_URL": f"postgresql+asyncpg://app:{SECRET}@127.0.0.1:1/db",
        "LOG_FORMAT": "json",
    }
    result = _run_cli(["db", "upgrade"], env, tmp_path)
    assert result.returncode != 0
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "env",
    [
        {"AMQP_URL": f"http://guest:{SECRET}@broker/"},  # the URL itself is refused
        {"AMQP_URL": f"amqp://guest:{SECRET}@broker/", "METRICS_PORT": "many"},
    ],
)
def test_invalid_settings_line_never_prints_the_password(
    env: dict[str, str], tmp_path: Path
) -> None:
    result = _run_cli(["db", "upgrade"], env, tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("leadrouter: invalid settings: ")
    assert SECRET not in result.stdout + result.stderr


class _EchoingSettings(BaseModel):
    """A validator that quotes the value it refuses, as a future one (or pydantic's) might."""

    amqp_url: str

    @field_validator("amqp_url")
    @classmethod
    def _refuse(cls, value: str) -> str:
        raise ValueError(f"cannot use {value}")


def test_invalid_settings_line_is_masked_even_when_it_quotes_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cli import settings_loader

    monkeypatch.setattr(
        settings_loader,
        "Settings",
        lambda: _EchoingSettings(amqp_url=f"amqp://guest:{SECRET}@broker/"),
    )
    with pytest.raises(SystemExit) as exit_info:
        settings_loader.load_settings()
    line = str(exit_info.value.code)
    assert SECRET not in line
    assert f"cannot use amqp://guest:{MASK}@broker/" in line


# --- reproducible installs -------------------------------------------------------------------

PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s=;]+)$")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"constraints.txt: not `name==version`: {line!r}"
        name = _normalise(match["name"])
        assert name not in pins, f"constraints.txt: {name} pinned twice"
        pins[name] = match["version"]
    return pins


def _project_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = project["optional-dependencies"].values()
    lines = [*project["dependencies"], *(line for group in groups for line in group)]
    requirements = [Requirement(line) for line in lines]
    return [r for r in requirements if _normalise(r.name) != _normalise(project["name"])]


def _applies(requirement: Requirement, extras: set[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in extras | {""})


def _installed_closure(requirements: list[Requirement]) -> dict[str, str]:
    """name -> installed version of every distribution the project needs here, transitively."""
    extras_seen: dict[str, set[str]] = {}
    versions: dict[str, str] = {}
    todo = [r for r in requirements if _applies(r, set())]
    while todo:
        requirement = todo.pop()
        name = _normalise(requirement.name)
        extras = set(requirement.extras)
        if name in extras_seen and extras <= extras_seen[name]:
            continue
        extras_seen[name] = extras_seen.get(name, set()) | extras
        distribution = metadata.distribution(requirement.name)
        versions[name] = distribution.version
        for line in distribution.requires or []:
            sub = Requirement(line)
            if _applies(sub, extras_seen[name]):
                todo.append(sub)
    return versions


def test_constraints_pin_every_requirement_of_pyproject() -> None:
    pins = _pins()
    missing = [str(r) for r in _project_requirements() if _normalise(r.name) not in pins]
    assert not missing, f"not in constraints.txt (run scripts/update-constraints): {missing}"


def test_constraints_pin_every_installed_dependency_at_its_installed_version() -> None:
    """The versions the tests run with are the versions Docker and CI install."""
    pins = _pins()
    installed = _installed_closure(_project_requirements())
    missing = sorted(set(installed) - set(pins))
    assert not missing, f"not in constraints.txt (run scripts/update-constraints): {missing}"
    drifted = {n: (v, pins[n]) for n, v in installed.items() if pins[n] != v}
    assert not drifted, (
        f"installed (left) differs from constraints.txt (right): {drifted}; "
        "reinstall with `pip install -c constraints.txt -e '.[dev]'`"
    )
    stray = sorted(set(pins) - set(installed))
    assert not stray, f"pinned but not needed by the project: {stray}"


def test_docker_and_ci_install_through_the_constraints() -> None:
    assert "pip install -c constraints.txt" in (ROOT / "Dockerfile").read_text()
    assert "COPY pyproject.toml constraints.txt" in (ROOT / "Dockerfile").read_text()
    assert "pip install --quiet -c constraints.txt -e '.[dev]'" in (ROOT / ".ci/run").read_text()
