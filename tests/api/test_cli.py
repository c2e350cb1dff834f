"""`leadrouter api` as a process: refuses a schema that is behind, serves /health when current."""

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import httpx

from cli.api_cmd import run_api
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
