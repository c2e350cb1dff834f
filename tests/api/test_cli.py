"""`leadrouter api` as a process: refuses a schema that is behind, serves /health when current;
Alembic's routine lines only with `--verbose`."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from cli.api_cmd import run_api
from db.schema_version import head_revision
from schemas.settings import Settings

STARTED = b"Application startup complete"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_refuses_a_schema_that_is_behind(tmp_path: Path) -> None:
    empty = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    settings = Settings(database_url=empty, _env_file=None)
    assert run_api(settings, "127.0.0.1", free_port()) == 3


async def test_serves_health_until_sigterm(settings: Settings) -> None:
    port = free_port()
    env = os.environ | {
        "DATABASE_URL": settings.database_url,
        "AMQP_URL": settings.amqp_url,
        "LOG_FORMAT": "json",
    }
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "leadrouter"),
        "api",
        "--port",
        str(port),
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    try:
        async with asyncio.timeout(30):
            while STARTED not in (line := await process.stderr.readline()):
                assert line, "leadrouter api exited before it started"
        async with httpx.AsyncClient() as client:
            health = await client.get(f"http://127.0.0.1:{port}/health")
        assert health.status_code == 200
        assert health.json()["database"] == "ok"
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0


def _run(args: list[str], database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"DATABASE_URL": database_url, "LOG_FORMAT": "json"}
    return subprocess.run(
        [str(Path(sys.executable).parent / "leadrouter"), *args],
        cwd=cwd,  # no .env from the repository
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _alembic_lines(output: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [line for line in lines if str(line.get("logger", "")).startswith("alembic")]


def test_commands_print_no_alembic_lines_unless_verbose(tmp_path: Path) -> None:
    """Alembic's INFO lines ("Context impl SQLiteImpl.", "Running upgrade …") are noise in
    every command's output; `--verbose`, before or after the command, brings them back."""
    quiet = f"sqlite+aiosqlite:///{tmp_path / 'quiet.db'}"
    upgraded = _run(["db", "upgrade"], quiet, tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "is at the newest schema" in upgraded.stdout
    assert _alembic_lines(upgraded.stderr) == []

    empty = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    behind = _run(["api", "--port", str(free_port())], empty, tmp_path)
    assert behind.returncode == 3  # refused before serving: the schema is behind
    assert _alembic_lines(behind.stderr) == []
    assert [json.loads(line)["event"] for line in behind.stderr.splitlines()] == [
        "database schema is at nothing, this code needs "
        f"{head_revision(empty)}: run `leadrouter db upgrade`"
    ]

    verbose = f"sqlite+aiosqlite:///{tmp_path / 'verbose.db'}"
    upgraded = _run(["db", "upgrade", "--verbose"], verbose, tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    events = [str(line["event"]) for line in _alembic_lines(upgraded.stderr)]
    assert "Context impl SQLiteImpl." in events
    assert any(event.startswith("Running upgrade") for event in events), events
    behind = _run(["-v", "api", "--port", str(free_port())], empty, tmp_path)
    assert behind.returncode == 3
    events = [str(line["event"]) for line in _alembic_lines(behind.stderr)]
    assert "Context impl SQLiteImpl." in events
