"""The work queues' broker delivery limit (issue 21): 100 on queues declared now; a queue an
older release declared with 20 is kept as it is (its limit cannot change in place), with one
warning line, instead of stopping the worker with PRECONDITION_FAILED."""

import aio_pika
import structlog
from aiormq.exceptions import ChannelPreconditionFailed

from messaging.topology import (
    CLOSE_QUEUE,
    CREATE_QUEUE,
    LEGACY_WORK_QUEUE_ARGUMENTS,
    WORK_QUEUE_ARGUMENTS,
    declare_topology,
)


async def test_new_queues_get_100_and_an_old_queue_keeps_20_with_a_warning(amqp_url: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        older = await connection.channel()
        await older.declare_queue(CLOSE_QUEUE, durable=True, arguments=LEGACY_WORK_QUEUE_ARGUMENTS)
        with structlog.testing.capture_logs() as logged:
            await declare_topology(await connection.channel())

        async def accepts(name: str, arguments: dict[str, object]) -> bool:
            probe = await connection.channel()
            try:
                await probe.declare_queue(name, durable=True, arguments=arguments)
            except ChannelPreconditionFailed:
                return False
            await probe.close()
            return True

        assert WORK_QUEUE_ARGUMENTS["x-delivery-limit"] == 100
        assert await accepts(CREATE_QUEUE, WORK_QUEUE_ARGUMENTS)
        assert not await accepts(CREATE_QUEUE, LEGACY_WORK_QUEUE_ARGUMENTS)
        assert await accepts(CLOSE_QUEUE, LEGACY_WORK_QUEUE_ARGUMENTS)
        assert not await accepts(CLOSE_QUEUE, WORK_QUEUE_ARGUMENTS)
    warnings = [x for x in logged if x["log_level"] == "warning"]
    assert [x["queue"] for x in warnings] == [CLOSE_QUEUE]
    assert "x-delivery-limit 20" in warnings[0]["event"]
