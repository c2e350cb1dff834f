"""(c) Publish -> event latency at a steady load (half the measured rate).

The harness talks to the broker through aiormq directly: it shares the machine's two cores
with the broker and the worker, and through aio-pika (a task and an `IncomingMessage` per
event received, one writer turn per publish) it cost 38 % of a core and its own queueing
counted as latency. The bare client loop measured through it: p99 66-238 ms at 850/s; through
this one 26-36 ms (bench/README.md).
"""

import asyncio
import contextlib
import gc
import os
import statistics
import time
from collections.abc import Iterator, Sequence
from typing import cast

import aiormq
from aio_pika import DeliveryMode
from aiormq.abc import DeliveredMessage

from bench.broker import broker_channel, create_body, reset_topology
from bench.cpu import process_cpu_seconds
from bench.pipeline import WORKER_MODULE, worker_process
from messaging.topology import COMMANDS_EXCHANGE, CREATE_ROUTING_KEY, EVENTS_EXCHANGE

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
    module: Sequence[str] = WORKER_MODULE,
) -> dict[str, float]:
    """Latency of `duration_s` of steady load, after `warmup_s` of the same load, through a
    `python -m <module>` process: the worker, or `bench.bare_loop` for the floor."""
    warmup = int(rate * warmup_s)
    total = warmup + max(1, int(rate * duration_s))
    sent = [0.0] * total
    latencies: dict[int, float] = {}
    done = asyncio.Event()

    async def on_event(message: DeliveredMessage) -> None:
        received = time.perf_counter()
        index = int((message.header.properties.correlation_id or "").removeprefix("lat-"))
        latencies[index] = received - sent[index]
        if len(latencies) == total:
            done.set()

    await _fresh_topology(amqp_url)
    connection = await aiormq.connect(amqp_url)
    try:
        channel = cast(aiormq.Channel, await connection.channel(publisher_confirms=False))
        events = await channel.queue_declare(exclusive=True)
        await channel.queue_bind(events.queue or "", EVENTS_EXCHANGE, routing_key="#")
        await channel.basic_consume(events.queue or "", on_event, no_ack=True)
        async with worker_process(amqp_url, database_url, extra_env, module) as worker:
            pids = {"worker": worker.pid, "bench": os.getpid()}
            before = {name: process_cpu_seconds(pid) for name, pid in pids.items()}
            started = time.perf_counter()
            with _no_collector_pauses():
                await _steady_publish(channel, source_ids, rate, sent)
                await asyncio.wait_for(done.wait(), timeout=warmup_s + duration_s + 60)
            elapsed = time.perf_counter() - started
            after = {name: process_cpu_seconds(pid) for name, pid in pids.items()}
    finally:
        await connection.close()
    steady = [latency for index, latency in latencies.items() if index >= warmup]
    return {
        **_summary(steady, rate),
        "warmup_s": warmup_s,
        "warmup_p99_ms": _summary([latencies[i] for i in range(warmup)] or steady, rate)["p99_ms"],
        **_cpu_shares(before, after, elapsed),
    }


async def _fresh_topology(amqp_url: str) -> None:
    """The worker's queues, empty; without the throughput stages' output queue, which nobody
    reads here and which would have the broker store every event a second time."""
    async with broker_channel(amqp_url) as channel:
        await reset_topology(channel, output_queue=False)


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
    channel: aiormq.Channel, source_ids: list[int], rate: float, sent: list[float]
) -> None:
    """Publish on a fixed schedule (not as fast as possible): i-th message at start + i/rate.

    Straight on aiormq without waiting for each frame to be written: this process shares the
    two cores with the broker and the worker, and the less it costs, the more of what it
    measures is theirs (see the module docstring).
    """
    started = time.perf_counter()
    for index in range(len(sent)):
        due = started + index / rate
        if (ahead := due - time.perf_counter()) > TICK_S:
            await asyncio.sleep(ahead)
        message_id = f"lat-{index}"
        sent[index] = time.perf_counter()
        await channel.basic_publish(
            create_body(index, source_ids[index % len(source_ids)]),
            exchange=COMMANDS_EXCHANGE,
            routing_key=CREATE_ROUTING_KEY,
            properties=aiormq.spec.Basic.Properties(
                message_id=message_id,
                correlation_id=message_id,
                content_type="application/json",
                delivery_mode=DeliveryMode.PERSISTENT,
            ),
            wait=False,
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
