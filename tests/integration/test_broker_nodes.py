"""AMQP_URL with several nodes (messaging/nodes.py), against the real broker behind TCP proxies.

Each proxy is a "node" with its own address that can die (`cut`) and come back. aio-pika alone
would reconnect to the URL it started with for ever; these tests fail if the rotation stops
working, e.g. after an aio-pika upgrade that no longer reads `connection.url` at each attempt or
no longer runs close callbacks when an attempt fails. tests/cluster/ does the same on a real
three-node cluster.
"""

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.broker import Broker
from messaging import nodes
from messaging.topology import CREATE_QUEUE, DEAD_QUEUE, declare_topology
from schemas.settings import Settings
from tests.conftest import running_worker
from tests.support import seed
from tests.support.amqp import Bot, Inbox, events_inbox
from tests.support.tcp_proxy import TcpProxy, reserve_port

LEADROUTER = str(Path(sys.executable).with_name("leadrouter"))
Sessions = async_sessionmaker[AsyncSession]


def at_port(amqp_url: str, port: int, password: str | None = None) -> str:
    """The same broker URL (user, vhost) with another port (and password)."""
    parts = urlsplit(amqp_url)
    user = parts.username or "guest"
    secret = password if password is not None else parts.password or "guest"
    netloc = f"{user}:{secret}@127.0.0.1:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def broker_port(amqp_url: str) -> int:
    return urlsplit(amqp_url).port or 5672


@pytest.fixture
async def proxies(amqp_url: str) -> AsyncIterator[tuple[TcpProxy, TcpProxy]]:
    """Two "nodes" in front of the test broker: the first open, the second not yet listening."""
    first = await TcpProxy("127.0.0.1", broker_port(amqp_url)).open()
    second = TcpProxy("127.0.0.1", broker_port(amqp_url))
    yield first, second
    await first.cut()
    await second.cut()


async def test_connect_takes_the_first_node_that_answers(amqp_url: str) -> None:
    down = at_port(amqp_url, reserve_port())
    connection = await nodes.connect(f"{down},{amqp_url}")
    async with connection:
        assert connection.url.port == broker_port(amqp_url)
        channel = await connection.channel()
        await declare_topology(channel)


async def test_no_node_answers_one_line_per_node_and_no_password(amqp_url: str) -> None:
    ports = [reserve_port(), reserve_port()]
    listed = ",".join(at_port(amqp_url, port, password="s3cret-pw") for port in ports)
    with pytest.raises(nodes.NoNodeAnswered) as failure:
        await nodes.connect(listed)
    text = str(failure.value)
    assert all(f"127.0.0.1:{port}" in text for port in ports)
    assert "s3cret-pw" not in text
    assert isinstance(failure.value, ConnectionError)  # the CLI's "cannot reach the broker"


async def test_robust_connection_moves_on_redeclares_and_consumes_again(
    amqp_url: str, proxies: tuple[TcpProxy, TcpProxy]
) -> None:
    """Node A dies; B is not up yet, so attempts go B, A, B, ... until B answers. Meanwhile the
    dead-letter queue is deleted behind the client's back: only a re-declaration on B brings it
    back, and the consumer must be restored there too."""
    first, second = proxies
    connection = await nodes.connect_robust(
        f"{at_port(amqp_url, first.port)},{at_port(amqp_url, second.port)}"
    )
    reconnected = asyncio.Event()
    connection.reconnect_callbacks.add(lambda *_: reconnected.set())
    async with connection:
        channel = await connection.channel()
        await declare_topology(channel)
        received = await Inbox(await channel.get_queue(CREATE_QUEUE)).start()
        plain = await aio_pika.connect(amqp_url)  # the test's own, straight to the broker
        bot = Bot(await plain.channel())
        await bot.raw("interaction.create", b"before")
        assert (await received.next()).body == {"_raw": "before"}

        await first.cut()
        await bot.channel.queue_delete(DEAD_QUEUE)
        await asyncio.sleep(1.5)  # a few failed attempts at B and A
        assert not reconnected.is_set()
        await second.open()
        await asyncio.wait_for(reconnected.wait(), 15)

        assert connection.url.port == second.port
        await bot.raw("interaction.create", b"after")
        # "before" may come again first: its ack may have died with node A.
        got = [(await received.next(within=15)).body["_raw"]]
        if got[0] == "before":
            got.append((await received.next(within=15)).body["_raw"])
        assert got[-1] == "after", got
        await bot.channel.declare_queue(DEAD_QUEUE, passive=True)  # re-declared on B
        await plain.close()


async def test_worker_fails_over_and_processes_each_message_once(
    settings: Settings,
    sessions: Sessions,
    channel: AbstractChannel,
    proxies: tuple[TcpProxy, TcpProxy],
) -> None:
    first, second = proxies
    await second.open()
    listed = f"{at_port(settings.amqp_url, first.port)},{at_port(settings.amqp_url, second.port)}"
    source = await seed.add_source(sessions, "nodes")
    operator = await seed.add_operator(sessions, "Ann", 100)
    await seed.set_weights(sessions, source, {operator: 10})
    events = await events_inbox(channel)
    bot = Bot(channel)
    async with running_worker(settings.model_copy(update={"amqp_url": listed}), sessions) as w:
        assert w.connection is not None and w.connection.url.port == first.port
        before = [await bot.create(f"a{n}@example.com", source) for n in range(20)]
        await events.take(20)
        await first.cut()
        after = [await bot.create(f"b{n}@example.com", source) for n in range(20)]
        announced: set[str] = set()
        async with asyncio.timeout(30):  # events of earlier batches may come again, same ids
            while not announced >= set(after):
                announced.add((await events.next(within=30)).body["message_id"])
        assert w.connection.url.port == second.port
    assert announced <= set(before + after)
    rows = await seed.interactions(sessions)
    assert sorted(row.message_id for row in rows) == sorted(before + after)


async def test_api_broker_connects_to_the_first_node_that_answers(amqp_url: str) -> None:
    broker = Broker(f"{at_port(amqp_url, reserve_port())},{amqp_url}", retry_s=0.2)
    broker.start()
    try:
        await asyncio.wait_for(broker.connected.wait(), 20)
        assert broker.is_up
        await broker.publish_command("interaction.create", b"{}", uuid.uuid4().hex)
    finally:
        await broker.close()


async def test_cli_uses_the_first_node_that_answers(amqp_url: str, tmp_path: Path) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        await declare_topology(await connection.channel())
    env = {
        **os.environ,
        "AMQP_URL": f"{at_port(amqp_url, reserve_port())},{amqp_url}",
        "LOG_FORMAT": "json",
    }
    process = await asyncio.create_subprocess_exec(
        LEADROUTER,
        "dlq",
        "list",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert out.decode().startswith(f"{DEAD_QUEUE}: 0 dead letter(s)")
