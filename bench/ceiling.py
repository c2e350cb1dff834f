"""(a) The bare client ceiling: `bench.bare_loop` over pre-published messages, no database.

Same broker, same queue type (quorum), same batch shape and prefetch as the worker, so the
ratio pipeline/ceiling says what the database and routing cost on top of AMQP itself.
"""

import asyncio
import os
import time

import aio_pika

from bench.bare_loop import bare_loop
from bench.broker import OUTPUT_QUEUE, broker_channel, prepublish, reset_topology, wait_for_depth
from bench.cpu import StageRate, per_message_us, process_cpu_seconds


async def measure_ceiling(amqp_url: str, count: int, batch_size: int, prefetch: int) -> StageRate:
    """Messages per second of the bare loop over `count` pre-published messages, and the CPU
    it took (this process's, which also polls the output queue's depth: a slight overcount)."""
    async with broker_channel(amqp_url) as channel:
        await reset_topology(channel)
        await prepublish(channel, count, [1])
        connection = await aio_pika.connect_robust(amqp_url)
        async with connection:
            started, cpu_before = time.perf_counter(), process_cpu_seconds(os.getpid())
            loop = asyncio.create_task(bare_loop(connection, batch_size, prefetch))
            finished = await wait_for_depth(channel, OUTPUT_QUEUE, count, deadline_s=600)
            cpu_after = process_cpu_seconds(os.getpid())
            loop.cancel()
        return StageRate(count / (finished - started), per_message_us(cpu_before, cpu_after, count))
