"""Hostile and careless AMQP input: each case is published between two valid commands, before
the worker starts, so all three arrive in one batch. The hostile one is dead-lettered alone with
a one-line reason; both valid ones are assigned; nothing goes back to the queue.
"""

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aio_pika.abc import AbstractChannel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from messaging import lenient_strings
from messaging.dead_letter import SHORT_STRINGS, original_property_header
from routing.outcomes import RefusalClass
from schemas.settings import Settings
from tests.conftest import running_worker
from tests.support import seed
from tests.support.amqp import Bot, Inbox
from worker.reasons import MAX_REASON_CHARS

Sessions = async_sessionmaker[AsyncSession]
CREATE, CLOSE, ACCEPT = "interaction.create", "interaction.close", "interaction.accept"
VALID = {"email": "good@example.com", "source_id": 1}


@dataclass(frozen=True)
class Case:
    routing_key: str
    body: bytes
    reason: str  # a fragment the one-line x-error must contain
    kind: RefusalClass
    properties: dict[str, Any] = field(default_factory=dict)


def create(**fields: Any) -> bytes:
    return json.dumps({**VALID, **fields}).encode()


NESTED = b"[" * 5000 + b"]" * 5000


def nested_table(depth: int) -> dict[str, Any]:
    table: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        table = {"n": table}
    return table


class FarTimestamp(datetime):
    """Encodes as 2^62 seconds: no `datetime` can hold it (pamqp raised on decoding it)."""

    def timestamp(self) -> float:
        return float(2**62)


@contextmanager
def deep_recursion() -> Iterator[None]:
    """Our own publisher encodes a 3,000-deep table recursively (the worker never does)."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(50_000)
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)


CORPUS = {
    "nested-5000-deep": Case(CREATE, NESTED, "nested too deeply", RefusalClass.NOT_JSON),
    "nested-in-payload": Case(
        CREATE,
        b'{"email": "a@example.com", "source_id": 1, "payload": ' + NESTED + b"}",
        "nested too deeply",
        RefusalClass.NOT_JSON,
    ),
    "number-5000-digits": Case(
        CREATE,
        b'{"email": "a@example.com", "source_id": 1, "payload": ' + b"7" * 5000 + b"}",
        "body is not JSON: Exceeds the limit",
        RefusalClass.NOT_JSON,
    ),
    "source-id-true": Case(
        CREATE, create(source_id=True), "source_id: Input should be a valid integer",
        RefusalClass.INVALID_BODY,
    ),
    "source-id-string": Case(
        CREATE, create(source_id="1"), "source_id", RefusalClass.INVALID_BODY
    ),
    "source-id-float": Case(CREATE, create(source_id=1.0), "source_id", RefusalClass.INVALID_BODY),
    "source-id-2-pow-31": Case(
        CREATE, create(source_id=2**31), "less than or equal to 2147483647",
        RefusalClass.INVALID_BODY,
    ),
    "unknown-field-message": Case(
        CREATE, create(message="Hello, I need help"), "message: Extra inputs are not permitted",
        RefusalClass.INVALID_BODY,
    ),
    "lone-surrogate-in-email": Case(
        CREATE,
        b'{"email": "\\ud800@example.com", "source_id": 1}',
        "invalid CreateInteraction: email",
        RefusalClass.INVALID_BODY,
    ),
    "lone-surrogate-in-payload": Case(
        CREATE,
        b'{"email": "a@example.com", "source_id": 1, "payload": {"text": "\\ud800"}}',
        "payload",
        RefusalClass.INVALID_BODY,
    ),
    "unknown-source-9999": Case(
        CREATE, create(source_id=9999), "unknown source_id 9999", RefusalClass.UNKNOWN_SOURCE
    ),
    "close-id-true": Case(
        CLOSE, b'{"interaction_id": true}', "interaction_id: Input should be a valid integer",
        RefusalClass.INVALID_BODY,
    ),
    "close-id-2-pow-40": Case(
        CLOSE, b'{"interaction_id": 1099511627776}', "interaction_id", RefusalClass.INVALID_BODY
    ),
    "close-unknown-field": Case(
        CLOSE, b'{"interaction_id": 1, "note": "x"}', "note: Extra inputs",
        RefusalClass.INVALID_BODY,
    ),
    "accept-operator-string": Case(
        ACCEPT, b'{"interaction_id": 1, "operator_id": "3"}',
        "operator_id: Input should be a valid integer", RefusalClass.INVALID_BODY,
    ),
    "accept-without-operator": Case(
        ACCEPT, b'{"interaction_id": 1}', "operator_id: Field required", RefusalClass.INVALID_BODY
    ),
    "accept-unknown-interaction": Case(
        ACCEPT, b'{"interaction_id": 424242, "operator_id": 1}', "unknown interaction 424242",
        RefusalClass.UNKNOWN_INTERACTION,
    ),
    "content-type-text-plain": Case(
        CREATE, create(), "content_type 'text/plain' is not application/json",
        RefusalClass.CONTENT_TYPE, {"content_type": "text/plain"},
    ),
    "content-encoding-gzip": Case(
        CREATE, create(), "content_encoding 'gzip' is not supported",
        RefusalClass.CONTENT_TYPE, {"content_encoding": "gzip"},
    ),
    "message-id-not-utf8": Case(
        CREATE, create(), "message_id is not valid UTF-8",
        RefusalClass.INVALID_PROPERTY, {"message_id": "bad-\udcff\udcfe"},
    ),
    "correlation-id-not-utf8": Case(
        CREATE, create(), "correlation_id is not valid UTF-8",
        RefusalClass.INVALID_PROPERTY, {"correlation_id": "c-\udcc3"},
    ),
    "header-name-not-utf8": Case(
        CREATE, create(), "is not valid UTF-8",
        RefusalClass.INVALID_PROPERTY, {"headers": {"x-\udcff": "1"}},
    ),
    "headers-nested-3000-deep": Case(
        CREATE, create(), "header 'x-deep' could not be decoded (nested deeper than 64 levels)",
        RefusalClass.INVALID_PROPERTY, {"headers": {"x-deep": nested_table(3000)}},
    ),
    "array-nested-3000-deep": Case(
        CREATE, create(), "header 'x-deep' could not be decoded (nested deeper than 64 levels)",
        RefusalClass.INVALID_PROPERTY, {"headers": {"x-deep": [[[nested_table(3000)]]]}},
    ),
    "timestamp-2-pow-62": Case(
        CREATE, create(), "timestamp 4611686018427387904 is out of range",
        RefusalClass.INVALID_PROPERTY, {"timestamp": FarTimestamp(2026, 1, 1, tzinfo=UTC)},
    ),
    "message-id-nul": Case(
        CREATE, create(), "message_id contains the NUL character, which cannot be stored",
        RefusalClass.INVALID_PROPERTY, {"message_id": "m\x00id"},
    ),
    "correlation-id-nul": Case(
        CREATE, create(), "correlation_id contains the NUL character, which cannot be stored",
        RefusalClass.INVALID_PROPERTY, {"correlation_id": "c\x00"},
    ),
    "reply-to-nul": Case(
        CREATE, create(), "reply_to contains the NUL character, which cannot be stored",
        RefusalClass.INVALID_PROPERTY, {"reply_to": "replies\x00"},
    ),
    "email-nul": Case(
        CREATE, create(email="a\x00b@example.com"), "U+0000", RefusalClass.INVALID_BODY
    ),
}  # fmt: skip


@pytest.fixture(autouse=True)
def lenient_amqp_strings() -> None:
    """The test's own publisher must be able to send bytes that are not UTF-8."""
    lenient_strings.install()


async def configured(sessions: Sessions) -> None:
    """Source 1 with one operator of ample capacity, and interaction 1 open (for closes)."""
    source = await seed.add_source(sessions, "web")
    operator = await seed.add_operator(sessions, "Bob", 100)
    await seed.set_weights(sessions, source, {operator: 10})
    assert source == 1


@pytest.mark.parametrize("name", list(CORPUS))
async def test_hostile_message_is_dead_lettered_alone_and_its_batch_mates_are_routed(
    name: str,
    settings: Settings,
    sessions: Sessions,
    channel: AbstractChannel,
    bot: Bot,
    events: Inbox,
    dead_letters: Inbox,
) -> None:
    case = CORPUS[name]
    await configured(sessions)
    await bot.create("before@example.com", 1, message_id="valid-before")
    with deep_recursion():
        await bot.raw(case.routing_key, case.body, **{"message_id": "hostile", **case.properties})
    await bot.create("after@example.com", 1, message_id="valid-after")

    async with running_worker(settings, sessions) as worker:
        routed = await events.take(2)
        dead = await dead_letters.next()
        assert worker.ready.is_set()
        dead_lettered = worker.metrics.dead_lettered

    assert sorted(e.body["message_id"] for e in routed) == ["valid-after", "valid-before"]
    assert {e.body["status"] for e in routed} == {"assigned"}
    error = dead.headers["x-error"]
    assert case.reason in error
    assert "\n" not in error and len(error) <= MAX_REASON_CHARS
    assert "SELECT" not in error and "[SQL" not in error
    assert dead.message.body == case.body  # the original, byte for byte
    sent = {"message_id": "hostile", **case.properties}
    for name, value in sent.items():  # readable by any client: escaped, the bytes kept aside
        if name not in SHORT_STRINGS:
            continue
        if isinstance(value, str) and not lenient_strings.is_utf8(value):
            assert getattr(dead.message, name) == lenient_strings.printable(value)
            original = dead.headers[original_property_header(name)]
            assert original == value.encode("utf-8", "surrogateescape")
            assert f"original bytes in {original_property_header(name)}" in error
        else:
            assert getattr(dead.message, name) == value
    assert "x-death" not in dead.headers  # the worker refused it; the broker never had to
    assert not dead.message.redelivered
    assert dead_letters.pending() == 0
    labels = {
        s.labels["reason"]: s.value
        for m in dead_lettered.collect()
        for s in m.samples
        if s.name.endswith("_total")
    }
    assert labels.get(case.kind.value) == 1
    assert set(labels) <= {k.value for k in RefusalClass}
    stored = await seed.interactions(sessions)
    assert sorted(i.message_id or "" for i in stored) == ["valid-after", "valid-before"]


async def test_close_of_true_leaves_interaction_1_open(
    settings: Settings, sessions: Sessions, bot: Bot, events: Inbox, dead_letters: Inbox
) -> None:
    await configured(sessions)
    async with running_worker(settings, sessions):
        await bot.create("first@example.com", 1)
        assigned = await events.next()
        assert assigned.body["interaction_id"] == 1
        await bot.raw(CLOSE, b'{"interaction_id": true}')
        await dead_letters.next()
    (interaction,) = await seed.interactions(sessions)
    assert interaction.status == "assigned"


async def test_forged_delivery_count_on_a_first_delivery_is_not_poison(
    settings: Settings, sessions: Sessions, bot: Bot, events: Inbox, dead_letters: Inbox
) -> None:
    await configured(sessions)
    await bot.create("forged@example.com", 1, headers={"x-delivery-count": 99})
    async with running_worker(settings, sessions):
        event = await events.next()
    assert event.body["status"] == "assigned"
    assert dead_letters.pending() == 0


@pytest.mark.parametrize(
    "own_queue",
    ["interactions.create", "interactions.close", "interactions.accept", "interactions.dead"],
)
async def test_reply_to_one_of_the_service_queues_is_ignored_and_counted(
    own_queue: str,
    settings: Settings,
    sessions: Sessions,
    channel: AbstractChannel,
    bot: Bot,
    events: Inbox,
    dead_letters: Inbox,
) -> None:
    await configured(sessions)
    async with running_worker(settings, sessions) as worker:
        await bot.create("loop@example.com", 1, reply_to=own_queue, correlation_id="c-1")
        first = await events.next()
        await bot.create("next@example.com", 1)  # processed after any copy would have been
        second = await events.next()
        ignored = worker.metrics.reply_to_ignored.labels("own_queue")._value.get()
    assert first.body["status"] == second.body["status"] == "assigned"
    assert ignored == 1
    assert [i.message_id for i in await seed.interactions(sessions)] == [
        first.body["message_id"],
        second.body["message_id"],
    ]  # no second interaction from a copy delivered into interactions.create
    assert dead_letters.pending() == 0
    for name in (
        "interactions.create",
        "interactions.close",
        "interactions.accept",
        "interactions.dead",
    ):
        queue = await channel.declare_queue(name, passive=True)
        assert queue.declaration_result.message_count == 0, name


async def test_a_reply_to_queue_of_the_bot_still_gets_its_copy(
    settings: Settings, sessions: Sessions, channel: AbstractChannel, bot: Bot, events: Inbox
) -> None:
    await configured(sessions)
    replies = await channel.declare_queue(exclusive=True)
    inbox = await Inbox(replies).start()
    async with running_worker(settings, sessions):
        await bot.create("reply@example.com", 1, reply_to=replies.name, correlation_id="c-7")
        reply = await inbox.next()
    assert reply.message.correlation_id == "c-7"
