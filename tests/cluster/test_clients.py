"""The API's broker link and the CLI on the real cluster: first node that answers, then the next.

The workers' side is tests/cluster/test_failover.py; tests/integration/test_broker_nodes.py
checks the same rotation against proxies in front of the single test broker.
"""

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

import aio_pika
import pytest

from api.broker import Broker
from messaging import nodes
from messaging.topology import CREATE_QUEUE, DEAD_QUEUE, declare_topology
from tests.cluster.throwaway import ThrowawayCluster

pytestmark = pytest.mark.cluster
LEADROUTER = str(Path(sys.executable).with_name("leadrouter"))


async def test_api_and_cli_skip_a_dead_node_and_the_api_moves_on_when_its_node_dies(
    cluster: ThrowawayCluster, cluster_vhost: str, tmp_path: Path
) -> None:
    first, second, third = cluster.nodes
    connection = await aio_pika.connect(third.url(cluster_vhost))
    async with connection:
        channel = await connection.channel()
        await declare_topology(channel)
        await asyncio.to_thread(cluster.kill, first)

        listed = cluster.urls(cluster_vhost)  # node 1 first: it is down
        assert await dlq_list(listed, tmp_path) == f"{DEAD_QUEUE}: 0 dead letter(s), showing 0"
        broker = Broker(listed, retry_s=0.2)
        broker.start()
        try:
            await asyncio.wait_for(broker.connected.wait(), 30)
            assert broker._link is not None
            assert nodes.where(broker._link.connection.url) == f"127.0.0.1:{second.amqp_port}"
            await broker.publish_command("interaction.create", b"{}", uuid.uuid4().hex)

            await asyncio.to_thread(cluster.restart, first)  # a majority again without node 2
            began = time.monotonic()
            await asyncio.to_thread(cluster.kill, second)
            await until_on(broker, f"127.0.0.1:{third.amqp_port}")
            moved_s = time.monotonic() - began
            await broker.publish_command("interaction.create", b"{}", "after-the-move")
        finally:
            await broker.close()
        queue = await channel.declare_queue(CREATE_QUEUE, passive=True)
        ids = [m.message_id for m in [await queue.get(), await queue.get()]]
        assert "after-the-move" in ids
    print(f"api broker link moved to the next node in {moved_s:.2f}s")


async def until_on(broker: Broker, node: str, within: float = 30) -> None:
    """Until the API's link is up again, on `node`."""
    deadline = time.monotonic() + within
    while not (broker.is_up and broker._link and nodes.where(broker._link.connection.url) == node):
        assert time.monotonic() < deadline, f"the link did not come back on {node}"
        await asyncio.sleep(0.02)


async def dlq_list(amqp_url: str, cwd: Path) -> str:
    process = await asyncio.create_subprocess_exec(
        LEADROUTER,
        "dlq",
        "list",
        cwd=cwd,
        env={**os.environ, "AMQP_URL": amqp_url, "LOG_FORMAT": "json"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode().splitlines()[0]
