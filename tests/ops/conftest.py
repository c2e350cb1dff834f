"""Helpers for the operations tests: free ports, HTTP polling, and the CLI run as a process.

The CLI runs as a real subprocess (`.venv/bin/leadrouter ...`) with the test's broker vhost and
database in its environment, while the worker runs in the test's event loop; that is how an
operator uses these commands against a running worker.
"""

import asyncio
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from schemas.settings import Settings

LEADROUTER = str(Path(sys.executable).with_name("leadrouter"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(url)


async def until(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    """Poll `check` until it holds (for values sampled on a timer, which no event announces)."""
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110 (nothing to await: sampled on a timer)
            await asyncio.sleep(0.05)


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str


CliRunner = Callable[..., Awaitable[CliResult]]


@pytest.fixture
def cli(settings: Settings, tmp_path: Path) -> CliRunner:
    """`await cli("dlq", "list")`: runs leadrouter against this test's broker and database."""
    env = {
        **os.environ,
        "AMQP_URL": settings.amqp_url,
        "DATABASE_URL": settings.database_url,
        "LOG_FORMAT": "json",
    }

    async def run(*args: str, stdin: bytes = b"", within: float = 120.0) -> CliResult:
        process = await asyncio.create_subprocess_exec(
            LEADROUTER,
            *args,
            cwd=tmp_path,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(stdin), within)
        assert process.returncode is not None
        return CliResult(process.returncode, out.decode(), err.decode())

    return run
