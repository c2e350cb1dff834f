"""Hostile input against the processes as a whole: the worker keeps its connection, the CLI
handles what the worker dead-lettered, and a topology conflict ends in one line."""

import json

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from messaging import lenient_strings
from messaging.topology import CLOSE_QUEUE
from schemas.settings import Settings
from tests.conftest import running_worker
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


async def test_a_message_id_that_is_not_utf8_costs_no_connection_and_the_cli_handles_it(
    settings: Settings,
    sessions: Sessions,
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
        for i in range(3):
            await bot.create(f"bad{i}@example.com", source, message_id=f"{NOT_UTF8_ID}{i}")
            await bot.create(f"good{i}@example.com", source, message_id=f"good-{i}")
        good = await events.take(3)
        dead = [await copies.next() for _ in range(3)]
        assert worker.connection is connection and not connection.is_closed
    listed = await cli("dlq", "list")
    full = await cli("dlq", "list", "--full")
    replayed = await cli("dlq", "replay", "--yes")
    still = await cli("dlq", "list")

    assert reconnects == []
    assert sorted(e.body["message_id"] for e in good) == ["good-0", "good-1", "good-2"]
    assert {d.headers["x-error"] for d in dead} == {"message_id is not valid UTF-8"}
    assert sorted(d.message.message_id or "" for d in dead) == [
        f"{NOT_UTF8_ID}{i}" for i in range(3)
    ]
    assert listed.code == 0, listed.stderr
    assert "3 dead letter(s)" in listed.stdout and "bad-\\xff\\xfe0" in listed.stdout
    assert full.code == 0 and "message_id is not valid UTF-8" in full.stdout
    assert replayed.code == 1, replayed.stderr  # nothing replayable: all three stay, each reported
    assert replayed.stdout.count("message_id is not valid UTF-8; fix the publisher") == 3
    assert "Traceback" not in listed.stderr + full.stderr + replayed.stderr
    assert "3 dead letter(s)" in still.stdout


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
