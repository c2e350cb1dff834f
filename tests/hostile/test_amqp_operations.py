"""Hostile input against the processes as a whole: the worker keeps its connection, the CLI
handles what the worker dead-lettered, and a topology conflict ends in one line."""

import asyncio
import json
import sys
from datetime import UTC

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from messaging import lenient_strings
from messaging.topology import CLOSE_QUEUE
from schemas.settings import Settings
from tests.conftest import running_worker
from tests.hostile.test_amqp_corpus import FarTimestamp, deep_recursion, nested_table
from tests.ops.conftest import CliRunner, cli  # noqa: F401  (the `cli` fixture)
from tests.ops.test_dlq import dead_letter_copies
from tests.support import seed
from tests.support.amqp import Bot, Inbox

Sessions = async_sessionmaker[AsyncSession]
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
NOT_UTF8_ID = "bad-\udcff\udcfe"  # the bytes b"bad-\xff\xfe" on the wire


@pytest.fixture(autouse=True)
def lenient_amqp_strings() -> None:
    lenient_strings.install()


# Stock aio-pika in a process of its own (nothing of leadrouter imported, so no shim): reads
# every message of interactions.dead, then closes the channel, which returns them all.
STOCK_READER = """
import asyncio, json, sys
import aio_pika

async def main(url):
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue("interactions.dead", passive=True)
        read = []
        while (message := await queue.get(no_ack=False, fail=False)) is not None:
            read.append({"message_id": message.message_id, "headers": sorted(message.headers)})
        print(json.dumps(read))

asyncio.run(main(sys.argv[1]))
"""


async def read_with_stock_aio_pika(amqp_url: str) -> list[dict[str, object]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", STOCK_READER, amqp_url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()[-2000:]
    assert b"lenient" not in err
    return list(json.loads(out))


UNREADABLE_CASES: list[dict[str, object]] = [
    {"message_id": f"{NOT_UTF8_ID}{i}"} for i in range(3)
] + [
    {"message_id": "c-not-utf8", "correlation_id": "c-\udcc3"},
    {"message_id": "r-not-utf8", "reply_to": "replies-\udcff", "app_id": "bot-\udcfe"},
    {"message_id": "h-not-utf8", "headers": {"x-\udcff": "1", "ok": {"in-\udcfe": 2}}},
    # not decodable by pamqp at all: their letters must be readable all the same
    {"message_id": "deep", "headers": {"x-deep": nested_table(3000)}},
    {"message_id": "far-timestamp", "timestamp": FarTimestamp(2026, 1, 1, tzinfo=UTC)},
]


async def test_unreadable_properties_cost_no_connection_any_client_reads_the_letters_replay_refuses(
    settings: Settings,
    sessions: Sessions,
    amqp_url: str,
    channel: AbstractChannel,
    bot: Bot,
    events: Inbox,
    cli: CliRunner,  # noqa: F811
) -> None:
    source = await seed.add_source(sessions, "web")
    operator = await seed.add_operator(sessions, "Ann", 50)
    await seed.set_weights(sessions, source, {operator: 10})
    copies = await dead_letter_copies(channel)
    reconnects: list[object] = []
    async with running_worker(settings, sessions) as worker:
        connection = worker.connection
        assert isinstance(connection, AbstractRobustConnection)
        connection.reconnect_callbacks.add(lambda *_: reconnects.append(1))
        for i, properties in enumerate(UNREADABLE_CASES):
            with deep_recursion():
                await bot.create(f"bad{i}@example.com", source, **properties)  # type: ignore[arg-type]
            await bot.create(f"good{i}@example.com", source, message_id=f"good-{i}")
        good = await events.take(len(UNREADABLE_CASES))
        dead = [await copies.next() for _ in UNREADABLE_CASES]
        assert worker.connection is connection and not connection.is_closed
    stock = await read_with_stock_aio_pika(amqp_url)
    listed = await cli("dlq", "list")
    full = await cli("dlq", "list", "--full")
    replayed = await cli("dlq", "replay", "--yes")
    still = await cli("dlq", "list")

    assert reconnects == []
    assert sorted(e.body["message_id"] for e in good) == [f"good-{i}" for i in range(8)]
    by_id = {d.message.message_id: d for d in dead}
    for i in range(3):  # escaped text in the property, the bytes beside it, and x-error says so
        letter = by_id[f"bad-\\xff\\xfe{i}"]
        assert letter.headers["x-original-message-id"] == f"bad-\xff\xfe{i}".encode("latin-1")
        assert letter.headers["x-error"] == (
            "message_id is not valid UTF-8; escaped in this letter, "
            "original bytes in x-original-message-id"
        )
    assert by_id["c-not-utf8"].message.correlation_id == "c-\\xc3"
    assert by_id["r-not-utf8"].message.reply_to == "replies-\\xff"
    assert by_id["r-not-utf8"].headers["x-original-app-id"] == b"bot-\xfe"
    renamed = by_id["h-not-utf8"].headers
    assert renamed["x-\\xff"] == "1" and renamed["ok"] == {"in-\\xfe": 2}
    assert sorted(renamed["x-original-header-names"]) == [b"in-\xfe", b"x-\xff"]
    assert "header names escaped" in renamed["x-error"]
    assert by_id["far-timestamp"].message.timestamp is None
    assert by_id["far-timestamp"].headers["x-original-timestamp"] == (2**62).to_bytes(8, "big")
    assert len(stock) == len(UNREADABLE_CASES)  # every letter read without a dropped connection
    assert {str(m["message_id"]) for m in stock} == set(by_id)
    assert listed.code == 0, listed.stderr
    assert f"{len(UNREADABLE_CASES)} dead letter(s)" in listed.stdout
    assert "bad-\\xff\\xfe0 (bytes b'bad-\\xff\\xfe0')" in listed.stdout
    assert "original message_id (not UTF-8): b'bad-\\xff\\xfe0'" in full.stdout
    assert replayed.code == 1, replayed.stderr  # nothing replayable: all stay, each reported
    assert replayed.stdout.count("replaying it would not send the original") == 8
    assert replayed.stdout.count("message_id was not UTF-8 (escaped in the letter)") == 3
    assert "Traceback" not in listed.stderr + full.stderr + replayed.stderr
    assert f"{len(UNREADABLE_CASES)} dead letter(s)" in still.stdout


async def test_a_queue_declared_with_other_arguments_stops_the_worker_with_one_line(
    settings: Settings,
    cli: CliRunner,  # noqa: F811
) -> None:
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue(CLOSE_QUEUE, durable=True)  # classic, no dead-lettering
        result = await cli("worker", within=60)
        await channel.queue_delete(CLOSE_QUEUE)

    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    errors = [line["event"] for line in lines if line.get("level") == "error"]
    assert result.code == 4, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert len(errors) == 1, result.stderr[-2000:]
    assert f"queue {CLOSE_QUEUE} already exists with other settings" in errors[0]
    assert "inequivalent arg" in errors[0] and "rabbitmqctl delete_queue" in errors[0]
