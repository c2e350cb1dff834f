"""Broker plumbing shared by the bench stages: a private vhost, pre-publishing, queue depth."""

import asyncio
import contextlib
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import quote, urlsplit, urlunsplit

import aio_pika
from aio_pika.abc import AbstractChannel

from messaging.topology import (
    COMMANDS_EXCHANGE,
    CREATE_ROUTING_KEY,
    EVENTS_EXCHANGE,
    declare_topology,
)

OUTPUT_QUEUE = "bench.output"
PUBLISH_WINDOW = 512


@contextlib.contextmanager
def private_vhost(amqp_url: str) -> Iterator[str]:
    """A throwaway vhost when rabbitmqctl is at hand (local broker), else the URL as given."""
    if shutil.which("rabbitmqctl") is None:
        yield amqp_url
        return
    vhost = f"leadrouter-bench-{uuid.uuid4().hex[:6]}"
    user = urlsplit(amqp_url).username or "guest"
    _ctl("add_vhost", vhost)
    _ctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
    try:
        parts = urlsplit(amqp_url)
        yield urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), "", ""))
    finally:
        _ctl("delete_vhost", vhost)


def _ctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@contextlib.asynccontextmanager
async def broker_channel(amqp_url: str) -> AsyncIterator[AbstractChannel]:
    """A plain (not robust) channel: a robust one caches passive declares, hiding queue depth."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        yield await connection.channel()


async def reset_topology(channel: AbstractChannel, *, output_queue: bool = True) -> None:
    """Fresh work queues plus (`output_queue`) a queue that collects every event, which
    nobody consumes: its depth is how a throughput stage knows every event is published."""
    work_queues = ("interactions.create", "interactions.close", "interactions.accept")
    for name in (*work_queues, "interactions.dead", OUTPUT_QUEUE):
        await channel.queue_delete(name)
    await declare_topology(channel)
    if not output_queue:
        return
    output = await channel.declare_queue(OUTPUT_QUEUE, durable=True)
    await output.bind(await channel.get_exchange(EVENTS_EXCHANGE), "#")


def create_body(index: int, source_id: int, priorities: bool = False) -> bytes:
    """A create from one of 5,000 leads (each writes again: stickiness has work to do); with
    `priorities`, priorities 0..9 in turn."""
    body = {
        "email": f"lead{index % 5000}@example.com",
        "source_id": source_id,
        "payload": {"text": "bench", "n": index},
    }
    if priorities:
        body["priority"] = index % 10
    return json.dumps(body).encode()


async def prepublish(
    channel: AbstractChannel, count: int, source_ids: list[int], priorities: bool = False
) -> None:
    """Publish `count` persistent creates with confirms, PUBLISH_WINDOW in flight at a time."""
    exchange = await channel.get_exchange(COMMANDS_EXCHANGE)
    for start in range(0, count, PUBLISH_WINDOW):
        await asyncio.gather(
            *(
                exchange.publish(
                    aio_pika.Message(
                        create_body(i, source_ids[i % len(source_ids)], priorities),
                        message_id=f"bench-{i}",
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    CREATE_ROUTING_KEY,
                )
                for i in range(start, min(count, start + PUBLISH_WINDOW))
            )
        )


async def queue_depth(channel: AbstractChannel, name: str) -> int:
    queue = await channel.declare_queue(name, passive=True)
    return int(queue.declaration_result.message_count or 0)


async def wait_for_depth(
    channel: AbstractChannel, name: str, expected: int, deadline_s: float, poll_s: float = 0.02
) -> float:
    """Poll the output queue until it holds `expected` messages; returns the moment it did."""
    give_up = time.perf_counter() + deadline_s
    while (depth := await queue_depth(channel, name)) < expected:
        if time.perf_counter() > give_up:
            raise TimeoutError(f"{name} reached {depth}/{expected} in {deadline_s}s")
        await asyncio.sleep(poll_s)
    return time.perf_counter()
