"""The dead-letter path under hostile input: what the letter itself could break.

- An original header big enough that its letter would exceed the frame size (the broker closed
  the worker's connection at each try).
- Header tables nested thousands deep (pamqp recursed until RecursionError: a reconnect loop).
- A NUL in a stored property (PostgreSQL failed the whole batch, then re-ran it one by one).
- `interactions.dead` deleted (the letter vanished and the original was acked).
Each runs inside a burst of valid commands on one worker, which must keep its connection.
"""

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from structlog.testing import capture_logs

from messaging import lenient_strings
from messaging.topology import DEAD_LETTER_EXCHANGE, DEAD_QUEUE
from schemas.settings import Settings
from tests.conftest import running_worker
from tests.hostile.test_amqp_corpus import deep_recursion, nested_table
from tests.ops.test_dlq import dead_letter_copies
from tests.support import seed
from tests.support.amqp import Bot, Inbox
from worker.app import Worker

Sessions = async_sessionmaker[AsyncSession]
FRAME_MAX = 131_072  # RabbitMQ's default, negotiated by every client here


@pytest.fixture(autouse=True)
def lenient_amqp_strings() -> None:
    lenient_strings.install()


async def configured(sessions: Sessions) -> int:
    source = await seed.add_source(sessions, "web")
    operator = await seed.add_operator(sessions, "Bob", 100_000)
    await seed.set_weights(sessions, source, {operator: 10})
    return source


def watch_reconnects(worker: Worker) -> list[object]:
    connection = worker.connection
    assert isinstance(connection, AbstractRobustConnection)
    reconnects: list[object] = []
    connection.reconnect_callbacks.add(lambda *_: reconnects.append(1))
    return reconnects


async def until(check: Callable[[], Awaitable[bool]], within: float = 20.0) -> None:
    """For what no event announces (a queue's depth, a counter)."""
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


def counter(metric: Any) -> float:
    return float(metric._value.get())


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_header_that_would_not_fit_in_the_letter_is_dropped_and_said_so(
    settings: Settings, sessions: Sessions, channel: AbstractChannel, bot: Bot, events: Inbox
) -> None:
    source = await configured(sessions)
    copies = await dead_letter_copies(channel)
    # One header entry of 131,020 bytes (name, type, length, value): the command fits in a
    # frame, its letter with `x-error` and the original routing key would not.
    big = "x" * (131_020 - 1 - len("x-big") - 1 - 4)
    async with running_worker(settings, sessions) as worker:
        reconnects = watch_reconnects(worker)
        for i in range(20):
            await bot.create(f"before{i}@example.com", source, message_id=f"before-{i}")
        await bot.raw("interaction.create", b"not json", message_id="big", headers={"x-big": big})
        for i in range(20):
            await bot.create(f"after{i}@example.com", source, message_id=f"after-{i}")
        routed = await events.take(40)
        dead = await copies.next()
        await bot.create("last@example.com", source, message_id="last")
        last = await events.next()  # everything before it settled
        returned = counter(worker.metrics.dead_letters_returned)

    assert reconnects == []
    assert {e.body["status"] for e in routed} == {"assigned"}
    assert last.body["message_id"] == "last"
    assert dead.message.message_id == "big" and dead.message.body == b"not json"
    assert "x-big" not in dead.headers
    assert dead.headers["x-dropped-headers"] == 1
    assert dead.headers["x-error"] == (
        "body is not JSON: Expecting value: line 1 column 1 (char 0); "
        "1 original header(s) dropped to fit the frame size: x-big"
    )
    assert copies.pending() == 0  # dead-lettered once
    assert returned == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_headers_nested_3000_deep_in_a_burst_are_refused_and_the_rest_processed(
    settings: Settings, sessions: Sessions, channel: AbstractChannel, bot: Bot, events: Inbox
) -> None:
    source = await configured(sessions)
    copies = await dead_letter_copies(channel)
    deep = {"x-deep": nested_table(3000)}
    for i in range(300):  # a backlog: the deep ones reach the worker among valid ones
        if i % 100 == 50:
            with deep_recursion():
                await bot.create(f"deep{i}@x.example", source, message_id=f"deep-{i}", headers=deep)
        await bot.create(f"lead{i}@example.com", source, message_id=f"valid-{i}")
    async with running_worker(settings, sessions) as worker:
        reconnects = watch_reconnects(worker)
        routed = await events.take(300, within=60)
        dead = [await copies.next() for _ in range(3)]

    assert reconnects == []
    assert len({e.body["message_id"] for e in routed}) == 300
    assert sorted(d.message.message_id or "" for d in dead) == ["deep-150", "deep-250", "deep-50"]
    for letter in dead:
        assert letter.headers["x-error"].startswith(
            "header 'x-deep' could not be decoded (nested deeper than 64 levels)"
        )
        assert letter.headers["x-undecodable-headers"] == ["x-deep"]
        value, depth = letter.headers["x-deep"], 1
        while isinstance(value, dict):
            value, depth = value["n"], depth + 1
        assert isinstance(value, bytes | bytearray) and depth < 70  # the rest as it came
    assert len(await seed.interactions(sessions)) == 300


NUL_CASES: list[tuple[dict[str, Any], dict[str, Any], str]] = [
    ({}, {"message_id": "nul\x00id"}, "message_id contains the NUL character"),
    ({}, {"correlation_id": "c\x00"}, "correlation_id contains the NUL character"),
    ({}, {"reply_to": "replies\x00"}, "reply_to contains the NUL character"),
    ({"handle": "tg:\x001"}, {}, "handle: must not contain NUL characters"),
    ({"payload": {"text": "a\x00b"}}, {}, "payload contains the NUL character"),
]


async def test_nul_in_one_percent_of_a_burst_is_refused_at_the_edge_not_by_the_batch(
    settings: Settings, sessions: Sessions, channel: AbstractChannel, bot: Bot, events: Inbox
) -> None:
    """SQLite and PostgreSQL alike: the batch path routes the rest, nothing re-run one by one."""
    source = await configured(sessions)
    copies = await dead_letter_copies(channel)
    bad_at = {i * 100 + 37: case for i, case in enumerate(NUL_CASES)}
    for i in range(500):
        if (case := bad_at.get(i)) is not None:
            fields, properties = case[0], {"message_id": f"nul-{i}", **case[1]}
            body = json.dumps({"email": f"nul{i}@example.com", "source_id": source, **fields})
            await bot.raw("interaction.create", body.encode(), **properties)
        else:
            await bot.create(f"lead{i}@example.com", source, message_id=f"valid-{i}")
    with capture_logs() as logs:
        async with running_worker(settings, sessions):
            routed = await events.take(495, within=60)
            dead = [await copies.next() for _ in NUL_CASES]

    assert len({e.body["message_id"] for e in routed}) == 495
    expected = {case[1].get("message_id", f"nul-{i}"): case[2] for i, case in bad_at.items()}
    assert {d.message.message_id: d.headers["x-error"] for d in dead}.keys() == expected.keys()
    for letter in dead:
        assert expected[letter.message.message_id or ""] in letter.headers["x-error"]
    assert not [line for line in logs if line["event"] == "batch failed, isolating"]
    assert not [line for line in logs if line["event"] == "routing failed"]
    assert len(await seed.interactions(sessions)) == 495


async def dead_queue_depth(connection: AbstractRobustConnection) -> int | None:
    """Messages in interactions.dead, or None while it does not exist (on a spare channel:
    a passive declare of a missing queue closes its channel)."""
    spare = await connection.channel()
    try:
        queue = await spare.declare_queue(DEAD_QUEUE, passive=True)
    except Exception:
        return None
    finally:
        if not spare.is_closed:
            await spare.close()
    return int(queue.declaration_result.message_count or 0)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_with_interactions_dead_deleted_the_letter_is_not_lost_and_the_queue_comes_back(
    settings: Settings,
    sessions: Sessions,
    amqp_connection: AbstractRobustConnection,
    channel: AbstractChannel,
    bot: Bot,
    events: Inbox,
) -> None:
    source = await configured(sessions)
    async with running_worker(settings, sessions) as worker:
        reconnects = watch_reconnects(worker)
        await channel.queue_delete(DEAD_QUEUE)  # by hand, a policy, a restore
        await bot.create("before@example.com", source, message_id="before")
        for i in range(3):
            await bot.create(f"bad{i}@example.com", 999, message_id=f"bad-{i}")  # no source
        await bot.create("after@example.com", source, message_id="after")
        routed = await events.take(2)

        async def landed() -> bool:
            return await dead_queue_depth(amqp_connection) == 3

        await until(landed)
        returned = counter(worker.metrics.dead_letters_returned)
        assert not worker.connection.is_closed  # type: ignore[union-attr]

    assert reconnects == []
    assert sorted(e.body["message_id"] for e in routed) == ["after", "before"]
    assert 1 <= returned <= 3  # returned until the queue was back: one batch or three
    dead = await channel.get_queue(DEAD_QUEUE)
    letters = [await dead.get(no_ack=True) for _ in range(3)]
    assert sorted(m.message_id or "" for m in letters) == ["bad-0", "bad-1", "bad-2"]
    assert {(m.headers or {})["x-error"] for m in letters} == {"unknown source_id 999"}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_letter_that_cannot_be_stored_keeps_its_original_until_the_queue_is_fixed(
    settings: Settings,
    sessions: Sessions,
    amqp_connection: AbstractRobustConnection,
    channel: AbstractChannel,
    bot: Bot,
    events: Inbox,
) -> None:
    """An operator re-created interactions.dead by hand, as a classic queue and not bound:
    the worker cannot declare it (other settings), so the original goes back to its queue,
    again and again, logged and counted, until the queue is bound; then the letter lands."""
    source = await configured(sessions)
    with capture_logs() as logs:
        async with running_worker(settings, sessions) as worker:
            reconnects = watch_reconnects(worker)
            await channel.queue_delete(DEAD_QUEUE)
            await channel.declare_queue(DEAD_QUEUE, durable=True)  # classic, no binding
            await bot.create("bad@example.com", 999, message_id="bad")
            await bot.create("good@example.com", source, message_id="good")
            good = await events.next()

            async def came_back_twice() -> bool:
                return counter(worker.metrics.dead_letters_returned) >= 2

            await until(came_back_twice)
            dlx = await channel.get_exchange(DEAD_LETTER_EXCHANGE)
            await (await channel.get_queue(DEAD_QUEUE)).bind(dlx)  # the operator's fix

            async def landed() -> bool:
                return await dead_queue_depth(amqp_connection) == 1

            await until(landed)
            await bot.create("next@example.com", source, message_id="next")
            after = await events.next()  # the worker is still consuming

    assert reconnects == []
    assert (good.body["message_id"], after.body["message_id"]) == ("good", "next")
    missing = [line for line in logs if line["event"].startswith("dead letter not stored")]
    assert len(missing) >= 2
    assert all(line["message_id"] == "bad" for line in missing)
    assert "declare interactions.dead and bind it" in missing[0]["event"]
    letter = await (await channel.get_queue(DEAD_QUEUE)).get(no_ack=True)
    assert letter is not None and letter.message_id == "bad"
    create = await channel.declare_queue("interactions.create", passive=True)
    assert create.declaration_result.message_count == 0
    await channel.queue_delete(DEAD_QUEUE)  # the next test's worker declares its own
