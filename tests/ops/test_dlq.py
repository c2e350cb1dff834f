"""`leadrouter dlq list` / `replay` end to end: a real worker dead-letters, the CLI moves it back.

The test watches dead letters through its own queue bound to the `interactions.dlx` fanout, so
`interactions.dead` itself is left for the CLI to read, as it would be in production.
"""

from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from messaging.topology import CLOSE_QUEUE, DEAD_LETTER_EXCHANGE
from tests.ops.conftest import CliRunner
from tests.support import seed
from tests.support.amqp import Bot, Inbox
from worker.app import Worker

Sessions = async_sessionmaker[AsyncSession]
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def dead_letter_copies(channel: AbstractChannel) -> Inbox:
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(await channel.get_exchange(DEAD_LETTER_EXCHANGE))
    return await Inbox(queue).start()


async def test_dead_letter_is_listed_replayed_after_the_fix_and_routed(
    sessions: Sessions,
    worker: Worker,
    bot: Bot,
    events: Inbox,
    channel: AbstractChannel,
    cli: CliRunner,
) -> None:
    copies = await dead_letter_copies(channel)
    await bot.create("a@example.com", 1, message_id="lost-1", correlation_id="c-1")
    assert "unknown source_id 1" in (await copies.next()).headers["x-error"]

    listed = await cli("dlq", "list")
    declined = await cli("dlq", "replay", stdin=b"n\n")
    source = await seed.add_source(sessions, "telegram")  # the fix
    operator = await seed.add_operator(sessions, "Ann", 5)
    await seed.set_weights(sessions, source, {operator: 10})
    replayed = await cli("dlq", "replay", "--yes")
    event = await events.next()
    after = await cli("dlq", "list")

    assert listed.code == 0, listed.stderr
    assert "1 dead letter(s)" in listed.stdout
    assert "lost-1" in listed.stdout and "unknown source_id 1" in listed.stdout
    assert (declined.code, declined.stdout.strip()) == (1, "nothing replayed")
    assert "Replay 1 of 1 dead letter(s)" in declined.stderr
    assert replayed.code == 0, replayed.stderr
    assert "replayed 1 of 1 dead letter(s) to exchange interactions" in replayed.stdout
    assert (event.routing_key, event.body["message_id"]) == ("interaction.assigned", "lost-1")
    assert event.body["operator_id"] == operator
    assert event.message.correlation_id == "c-1"
    assert "0 dead letter(s)" in after.stdout


async def test_replay_limit_and_original_properties_without_x_error(
    worker: Worker, bot: Bot, channel: AbstractChannel, cli: CliRunner
) -> None:
    copies = await dead_letter_copies(channel)
    for number in (1, 2):
        await bot.create(
            f"a{number}@example.com",
            7,
            message_id=f"m-{number}",
            correlation_id=f"c-{number}",
            headers={"x-bot": "telegram"},
        )
    await copies.take(2)

    replayed = await cli("dlq", "replay", "--yes", "--limit", "1")
    again = await copies.next()  # nothing was fixed: the replayed one is dead-lettered anew
    listed = await cli("dlq", "list", "--full")

    assert "replayed 1 of 1 dead letter(s)" in replayed.stdout
    assert again.message.message_id in {"m-1", "m-2"}
    assert again.message.correlation_id == f"c-{again.message.message_id[-1]}"
    assert again.headers["x-bot"] == "telegram"
    assert again.headers["x-error"] == "unknown source_id 7"  # one fresh reason, not the old one
    assert again.headers["x-original-routing-key"] == "interaction.create"
    assert "x-delivery-count" not in again.headers
    assert "2 dead letter(s), showing 2" in listed.stdout
    assert listed.stdout.count("x-error: unknown source_id 7") == 2


async def test_dlq_without_topology_says_how_to_get_one(amqp_url: str, cli: CliRunner) -> None:
    result = await cli("dlq", "list")  # amqp_url deleted the queues and no worker ran since

    assert result.code == 2
    assert "start `leadrouter worker` once" in result.stderr


async def publish_letter(
    channel: AbstractChannel, body: bytes, routing_key: str, **properties: Any
) -> None:
    """A letter as anything on the broker may leave it in interactions.dead."""
    headers = {"x-error": "test", "x-original-routing-key": routing_key}
    headers.update(properties.pop("headers", {}))
    dlx = await channel.get_exchange(DEAD_LETTER_EXCHANGE)
    await dlx.publish(aio_pika.Message(body, headers=headers, **properties), routing_key="")


async def test_replay_sends_only_the_contract_commands_to_interactions(
    amqp_url: str, channel: AbstractChannel, cli: CliRunner
) -> None:
    """`interactions` is a topic exchange: a letter's routing key is publisher-controlled
    text, and `#`, an event's key or a made-up one must not be published there."""
    strays = ["interaction.nowhere", "#", "interaction.assigned", "lead.merged", ""]
    for number, key in enumerate(strays):
        await publish_letter(channel, b"{}", key, message_id=f"stray-{number}")

    replayed = await cli("dlq", "replay", "--yes")
    listed = await cli("dlq", "list")

    assert replayed.code == 1
    assert f"replayed 0 of {len(strays)}" in replayed.stdout
    for number, key in enumerate(strays):
        assert f"stray-{number}: routing key {key!r} is not a command" in replayed.stdout
    assert "(interaction.create, interaction.close, interaction.accept, operator.presence)" in (
        replayed.stdout
    )
    assert f"{len(strays)} dead letter(s)" in listed.stdout


async def test_replay_of_a_command_key_reaches_its_queue(
    amqp_url: str, channel: AbstractChannel, cli: CliRunner
) -> None:
    await publish_letter(channel, b'{"interaction_id": 1}', "interaction.close", message_id="c-1")

    replayed = await cli("dlq", "replay", "--yes")

    assert replayed.code == 0, replayed.stdout
    closes = await Inbox(await channel.get_queue(CLOSE_QUEUE)).start()
    message = (await closes.next()).message
    assert message.message_id == "c-1" and message.routing_key == "interaction.close"
    assert "x-error" not in (message.headers or {})


HOSTILE_TEXT = "line 1\nline 2\r\x1b[31mred\x1b[0m\u202eevil\u2028sep\x00end\ttab"


async def test_dlq_list_escapes_control_characters_one_entry_per_line(
    amqp_url: str, channel: AbstractChannel, cli: CliRunner
) -> None:
    await publish_letter(
        channel,
        HOSTILE_TEXT.encode(),
        "interaction.create\nforged",
        message_id="id\nwith\x1bnewline",
        headers={"x-error": HOSTILE_TEXT},
    )
    await publish_letter(channel, b"{}", "interaction.create", message_id="plain")

    listed = await cli("dlq", "list")
    full = await cli("dlq", "list", "--full")

    assert listed.code == 0 and full.code == 0, listed.stderr + full.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == 1 + 2 + 2  # count, column names, rule, one line per letter
    assert "id\\nwith\\x1bnewline" in lines[3] and "plain" in lines[4]
    assert "interaction.create\\nforged" in lines[3]
    for output in (listed.stdout, full.stdout):
        assert not any(c in output for c in "\r\x1b\x00\u202e\u2028\t")
    escaped = "line 1\\nline 2\\r\\x1b[31mred\\x1b[0m\\u202eevil\\u2028sep\\x00end\\ttab"
    assert escaped in full.stdout
    blocks = full.stdout.split("\n\n")[1:]
    assert [len(block.splitlines()) for block in blocks] == [3, 3]  # id, x-error, body
