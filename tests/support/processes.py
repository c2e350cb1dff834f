"""Real `leadrouter worker` processes for reliability tests: start, await log lines, signal, reap.

Each process logs JSON lines (LOG_FORMAT=json) on stderr; a reader task parses them as they come,
so a test awaits "worker started" or "transient error, retrying" instead of sleeping.
"""

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LEADROUTER = str(Path(sys.executable).with_name("leadrouter"))
STARTED = "worker started"
LogLine = dict[str, Any]
Predicate = Callable[[LogLine], bool]


class WorkerExited(AssertionError):
    """The process ended while a test still waited for something from it."""


@dataclass
class WorkerProcess:
    """One `leadrouter worker` child process and everything it logged so far."""

    name: str
    process: asyncio.subprocess.Process
    lines: list[LogLine] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _readers: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def events(self, event: str) -> list[LogLine]:
        """Every log line whose structlog `event` is exactly `event`."""
        return [line for line in self.lines if line.get("event") == event]

    async def wait_for(
        self, event: str, within: float = 20.0, where: Predicate = lambda _: True
    ) -> LogLine:
        """The first line with this `event` (and matching `where`), awaited as lines arrive."""

        def found() -> LogLine | None:
            return next((x for x in self.lines if x.get("event") == event and where(x)), None)

        async with asyncio.timeout(within), self._changed:
            while (line := found()) is None:
                if self._eof():
                    raise WorkerExited(f"{self.name} exited ({self.returncode}):\n{self.output()}")
                await self._changed.wait()
            return line

    async def wait_count(self, event: str, count: int, within: float = 30.0) -> None:
        """Until `count` lines with this `event` were logged (progress through a stream)."""
        async with asyncio.timeout(within), self._changed:
            while len(self.events(event)) < count:
                if self._eof():
                    raise WorkerExited(f"{self.name} exited ({self.returncode}):\n{self.output()}")
                await self._changed.wait()

    def signal(self, signum: signal.Signals) -> None:
        if self.returncode is None:
            self.process.send_signal(signum)

    async def wait(self, within: float) -> int:
        """Await the exit and the end of its output; the return code."""
        async with asyncio.timeout(within):
            code = await self.process.wait()
            await asyncio.gather(*self._readers)
        return code

    async def stop(self, within: float = 30.0) -> int:
        """SIGTERM and await the exit (SIGKILL if it does not come within `within`)."""
        self.signal(signal.SIGTERM)
        try:
            return await self.wait(within)
        except TimeoutError:
            self.signal(signal.SIGKILL)
            await self.wait(10)
            raise

    async def kill(self) -> int:
        """kill -9: no handler runs, no ack, no close; the broker and database see a dead peer."""
        self.signal(signal.SIGKILL)
        return await self.wait(10)

    async def kill_noting_connections(self, remote_port: int) -> tuple[int, set[int]]:
        """kill -9, and the local ports of its TCP connections to `remote_port` at that moment.

        Frozen first (SIGSTOP: no handler runs either), so it opens no connection between the
        look and the kill. A statement it sent before dying still runs on the server: a test that
        wants the database as the dead worker left it awaits the end of these connections.
        """
        self.signal(signal.SIGSTOP)
        try:
            ports = tcp_ports_to(self.pid, remote_port)
        finally:
            self.signal(signal.SIGKILL)
        return await self.wait(10), ports

    def output(self, last: int = 60) -> str:
        return "\n".join(self.raw[-last:])

    def _eof(self) -> bool:
        return all(task.done() for task in self._readers)

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while raw := await stream.readline():
            text = raw.decode(errors="replace").rstrip()
            self.raw.append(text)
            with contextlib.suppress(ValueError):
                parsed = json.loads(text)
                if isinstance(parsed, dict):
                    self.lines.append(parsed)
            async with self._changed:
                self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()


def tcp_ports_to(pid: int, remote_port: int) -> set[int]:
    """The local ports of `pid`'s TCP connections to `remote_port` (Linux: /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for row in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = row.split()
                local, remote, inode = fields[1], fields[2], fields[9]
                if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == remote_port:
                    ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def worker_env(amqp_url: str, database_url: str, **settings: object) -> dict[str, str]:
    """The parent's environment plus the worker's settings (upper-cased names, as str)."""
    env = dict(os.environ)
    env.update(AMQP_URL=amqp_url, DATABASE_URL=database_url, LOG_FORMAT="json")
    env.update({key.upper(): str(value) for key, value in settings.items()})
    return env


async def start_worker(
    name: str, env: Mapping[str, str], *, cwd: Path, burst: bool = False, within: float = 60.0
) -> WorkerProcess:
    """Spawn `leadrouter worker` and return once it logged "worker started" (it consumes then).

    `within` is generous: on a loaded host, a start next to workers busy with a backlog
    (imports, connections, topology) took over 30 s.
    """
    args = [LEADROUTER, "worker", *(["--burst"] if burst else [])]
    process = await asyncio.create_subprocess_exec(
        *args,
        env=dict(env),
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    worker = WorkerProcess(name, process)
    assert process.stdout is not None and process.stderr is not None
    worker._readers = [
        asyncio.create_task(worker._read(process.stdout)),
        asyncio.create_task(worker._read(process.stderr)),
    ]
    try:
        await worker.wait_for(STARTED, within=within)
    except TimeoutError:
        if worker.returncode is None:
            await worker.kill()
        raise AssertionError(f"{name} not started within {within}s:\n{worker.output()}") from None
    except BaseException:
        if worker.returncode is None:
            await worker.kill()
        raise
    return worker


class WorkerFleet:
    """The workers one test started; whatever is still running at the end is stopped."""

    def __init__(self, env: Mapping[str, str], cwd: Path) -> None:
        self.env = dict(env)
        self.cwd = cwd
        self.started: list[WorkerProcess] = []

    async def start(self, name: str, *, burst: bool = False, **overrides: object) -> WorkerProcess:
        env = {**self.env, **{k.upper(): str(v) for k, v in overrides.items()}}
        worker = await start_worker(name, env, cwd=self.cwd, burst=burst)
        self.started.append(worker)
        return worker

    def logged(self, event: str) -> list[LogLine]:
        return [line for worker in self.started for line in worker.events(event)]

    async def close(self) -> None:
        """SIGTERM what still runs (SIGKILL after 15 s), so no process outlives its test."""
        for worker in self.started:
            if worker.returncode is None:
                with contextlib.suppress(TimeoutError):
                    await worker.stop(within=15)


@contextlib.asynccontextmanager
async def fleet(env: Mapping[str, str], cwd: Path) -> AsyncIterator[WorkerFleet]:
    workers = WorkerFleet(env, cwd)
    try:
        yield workers
    finally:
        await workers.close()


async def until(
    condition: Callable[[], Any], within: float, every: float = 0.05, what: str = ""
) -> Any:
    """Poll an async or sync condition until truthy, with a deadline (for DB-only outcomes)."""
    deadline = time.monotonic() + within
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {within}s: {what or condition}")
        await asyncio.sleep(every)
