"""(b) The full pipeline: a real `leadrouter worker` process over pre-published messages."""

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence

from bench.broker import OUTPUT_QUEUE, broker_channel, prepublish, reset_topology, wait_for_depth
from bench.cpu import StageRate, per_message_us, process_cpu_seconds

WORKER_MODULE = ("cli", "worker")


@contextlib.asynccontextmanager
async def worker_process(
    amqp_url: str,
    database_url: str,
    extra_env: dict[str, str] | None = None,
    module: Sequence[str] = WORKER_MODULE,
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`leadrouter worker` (or another `python -m` module) as a child process; yields once it
    logs that it started."""
    env = {
        **os.environ,
        "AMQP_URL": amqp_url,
        "DATABASE_URL": database_url,
        "LOG_FORMAT": "json",
        **(extra_env or {}),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *module,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    try:
        async with asyncio.timeout(60):
            while b'"worker started"' not in (line := await process.stderr.readline()):
                if not line:
                    raise RuntimeError("worker exited before it started")
        drain = asyncio.create_task(_discard(process.stderr))  # a full pipe would stall it
        try:
            yield process
        finally:
            drain.cancel()
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


async def _discard(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass


async def measure_pipeline(
    amqp_url: str,
    database_url: str,
    source_ids: list[int],
    count: int,
    extra_env: dict[str, str] | None = None,
    priorities: bool = False,
) -> StageRate:
    """Interactions per second from worker start until every one has its event, and the
    worker process's CPU per interaction over the same span."""
    async with broker_channel(amqp_url) as channel:
        await reset_topology(channel)
        await prepublish(channel, count, source_ids, priorities)
        async with worker_process(amqp_url, database_url, extra_env) as worker:
            started, cpu_before = time.perf_counter(), process_cpu_seconds(worker.pid)
            finished = await wait_for_depth(channel, OUTPUT_QUEUE, count, deadline_s=900)
            cpu_after = process_cpu_seconds(worker.pid)
        return StageRate(count / (finished - started), per_message_us(cpu_before, cpu_after, count))
