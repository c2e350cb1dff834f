"""(c) Publish -> event latency at a steady load (half the measured rate)."""

import asyncio
import contextlib
import gc
import json
import os
import statistics
import time
from collections.abc import Iterator

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from bench.broker import create_body, reset_topology
from bench.cpu import process_cpu_seconds
from bench.pipeline import worker_process
from worker.topology import COMMANDS_EXCHANGE, CREATE_ROUTING_KEY, EVENTS_EXCHANGE

TICK_S = 0.005
# The first seconds of load after the worker starts are not steady state (a fresh process,
# its first connections and statements): timed, but reported apart from the steady figures.
WARMUP_S = 2.0


async def measure_latency(
    amqp_url: str,
    database_url: str,
    source_ids: list[int],
    rate: float,
    duration_s: float,
    extra_env: dict[str, str] | None = None,
    warmup_s: float = WARMUP_S,
) -> dict[str, float]:
    """Latency of `duration_s` of steady load, after `warmup_s` of the same load."""
    warmup = int(rate * warmup_s)
    total = warmup + max(1, int(rate * duration_s))
    sent: dict[str, float] = {}
    latencies: dict[int, float] = {}
    done = asyncio.Event()

    async def on_event(message: AbstractIncomingMessage) -> None:
        received = time.perf_counter()
        message_id = json.loads(message.body)["message_id"]
        latencies[int(message_id.removeprefix("lat-"))] = received - sent.pop(message_id)
        if len(latencies) == total:
            done.set()

    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=False)
        await reset_topology(channel)
        events = await channel.declare_queue(exclusive=True)
        await events.bind(await channel.get_exchange(EVENTS_EXCHANGE), "#")
        await events.consume(on_event, no_ack=True)
        async with worker_process(amqp_url, database_url, extra_env) as worker:
            pids = {"worker": worker.pid, "bench": os.getpid()}
            before = {name: process_cpu_seconds(pid) for name, pid in pids.items()}
            started = time.perf_counter()
            with _no_collector_pauses():
                await _steady_publish(channel, source_ids, rate, total, sent)
                await asyncio.wait_for(done.wait(), timeout=warmup_s + duration_s + 60)
            elapsed = time.perf_counter() - started
            after = {name: process_cpu_seconds(pid) for name, pid in pids.items()}
    steady = [latency for index, latency in latencies.items() if index >= warmup]
    return {
        **_summary(steady, rate),
        "warmup_s": warmup_s,
        "warmup_p99_ms": _summary([latencies[i] for i in range(warmup)] or steady, rate)["p99_ms"],
        **_cpu_shares(before, after, elapsed),
    }


@contextlib.contextmanager
def _no_collector_pauses() -> Iterator[None]:
    """The bench's own garbage collection off while it timestamps: a full collection of this
    process paused its event loop for tens of milliseconds and counted as worker latency."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _cpu_shares(
    before: dict[str, float | None], after: dict[str, float | None], elapsed: float
) -> dict[str, float]:
    """Busy fraction of one core per process while the load ran: how close to saturation the
    machine was (the broker, the worker and this process share its cores)."""
    shares = {}
    for name, start in before.items():
        end = after[name]
        if start is not None and end is not None and elapsed > 0:
            shares[f"{name}_cpu_share"] = round((end - start) / elapsed, 3)
    return shares


async def _steady_publish(
    channel: aio_pika.abc.AbstractChannel,
    source_ids: list[int],
    rate: float,
    total: int,
    sent: dict[str, float],
) -> None:
    """Publish on a fixed schedule (not as fast as possible): i-th message at start + i/rate."""
    exchange = await channel.get_exchange(COMMANDS_EXCHANGE)
    started = time.perf_counter()
    for index in range(total):
        due = started + index / rate
        if (ahead := due - time.perf_counter()) > TICK_S:
            await asyncio.sleep(ahead)
        message_id = f"lat-{index}"
        sent[message_id] = time.perf_counter()
        await exchange.publish(
            aio_pika.Message(
                create_body(index, source_ids[index % len(source_ids)]),
                message_id=message_id,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            CREATE_ROUTING_KEY,
        )


def _summary(latencies: list[float], rate: float) -> dict[str, float]:
    ordered = sorted(latencies)
    quantiles = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "rate_per_s": round(rate, 1),
        "count": len(ordered),
        "p50_ms": round(quantiles[49] * 1000, 2),
        "p99_ms": round(quantiles[98] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }
