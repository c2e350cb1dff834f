"""Issue 21's mixed test: a dozen hostile messages spread through 20,000 valid creates.

One worker process (as the issue measured it), SQLite. First a clean burst, timed from the first
publish to the last event; then, on a fresh database and fresh queues, the same burst with the
hostile messages among it. Every valid command is assigned exactly once and none is
dead-lettered; each hostile one is dead-lettered with its reason (the forged reply_to is processed,
its reply ignored); the worker never loses a connection; the mixed burst takes at most 1.5x the
clean one (both times printed: on a loaded machine that bound is the first thing to look at).
"""

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractExchange

from db.session import create_engine, create_session_factory
from messaging import lenient_strings
from messaging.reply_to import ReplyToRefusal
from messaging.topology import (
    COMMANDS_EXCHANGE,
    CREATE_QUEUE,
    CREATE_ROUTING_KEY,
    DEAD_QUEUE,
    declare_topology,
)
from tests.hostile.test_amqp_corpus import NESTED, deep_recursion, nested_table
from tests.hostile.test_reply_to import FORGED
from tests.ops.test_dlq import dead_letter_copies
from tests.reliability.conftest import FAST, Sessions
from tests.reliability.helpers import (
    EventLog,
    assert_exactly_once,
    event_log,
    one_source,
)
from tests.support import databases
from tests.support.amqp import Inbox, Received
from tests.support.processes import WorkerProcess, fleet, worker_env

pytestmark = pytest.mark.slow
MESSAGES = 20_000
BOUND = 1.5  # the mixed burst may take at most this many times the clean one
BIG = "x" * (131_020 - 1 - len("x-big") - 1 - 4)  # one header entry of 131,020 bytes


@dataclass(frozen=True)
class Hostile:
    """One hostile message: its body (given the source id), properties, and the fragment its
    letter's `x-error` must contain (None: processed as a valid create)."""

    name: str
    body: Callable[[int], bytes]
    reason: str | None
    properties: dict[str, Any] = field(default_factory=dict)

    @property
    def message_id(self) -> str:
        return str(self.properties.get("message_id", f"hostile-{self.name}"))

    @property
    def letter_id(self) -> str:
        """The message_id its letter carries (escaped when it was not UTF-8)."""
        mid = self.message_id
        return mid if lenient_strings.is_utf8(mid) else lenient_strings.printable(mid)


def create(email: str, **fields: Any) -> Callable[[int], bytes]:
    return lambda source: json.dumps({"email": email, "source_id": source, **fields}).encode()


def raw(body: bytes) -> Callable[[int], bytes]:
    return lambda _: body


HOSTILE = [
    Hostile("forged-reply-to", create("forged@example.com"), None, {"reply_to": FORGED}),
    Hostile(
        "big-header",
        raw(b"not json"),
        "1 original header(s) dropped to fit the frame size: x-big",
        {"headers": {"x-big": BIG}, "message_id": "big"},  # a longer id: no frame holds it
    ),
    Hostile(
        "headers-3000-deep",
        create("deep@example.com"),
        "header 'x-deep' could not be decoded (nested deeper than 64 levels)",
        {"headers": {"x-deep": nested_table(3000)}},
    ),
    Hostile(
        "nul-message-id",
        create("nul1@example.com"),
        "message_id contains the NUL character",
        {"message_id": "hostile-nul\x00id"},
    ),
    Hostile(
        "nul-correlation-id",
        create("nul2@example.com"),
        "correlation_id contains the NUL character",
        {"correlation_id": "c\x00"},
    ),
    Hostile(
        "nul-reply-to",
        create("nul3@example.com"),
        "reply_to contains the NUL character",
        {"reply_to": "replies\x00"},
    ),
    Hostile(
        "message-id-not-utf8",
        create("bytes1@example.com"),
        "message_id is not valid UTF-8",
        {"message_id": "hostile-\udcff\udcfe"},
    ),
    Hostile(
        "header-name-not-utf8",
        create("bytes2@example.com"),
        "header names escaped",
        {"headers": {"x-\udcff": "1"}},
    ),
    Hostile("body-nested-5000-deep", raw(NESTED), "nested too deeply"),
    Hostile(
        "source-id-true",
        raw(b'{"email": "true@example.com", "source_id": true}'),
        "source_id: Input should be a valid integer",
    ),
    Hostile(
        "unknown-source",
        raw(b'{"email": "lost@example.com", "source_id": 9999}'),
        "unknown source_id 9999",
    ),
    Hostile("email-nul", create("a\x00b@example.com"), "U+0000"),
]


@pytest.fixture(autouse=True)
def lenient_amqp_strings() -> None:
    """The test's own publisher must be able to send bytes that are not UTF-8."""
    lenient_strings.install()


@pytest.fixture
async def fresh_database(
    sqlite_template: Path, tmp_path: Path
) -> AsyncIterator[Callable[[], tuple[str, Sessions]]]:
    """A new migrated SQLite database per call: its URL and a session factory."""
    engines = []

    def make() -> tuple[str, Sessions]:
        url = databases.sqlite_copy(sqlite_template, tmp_path)
        engines.append(engine := create_engine(url))
        return url, create_session_factory(engine)

    yield make
    for engine in engines:
        await engine.dispose()


async def publish_burst(
    exchange: AbstractExchange, source: int, prefix: str, hostile_at: dict[int, Hostile]
) -> list[str]:
    """`MESSAGES` valid creates with confirms, 500 in flight at a time (as `publish_creates`),
    each hostile one published before the valid one at its index; the valid message_ids."""
    ids: list[str] = []
    pending = []
    for n in range(MESSAGES):
        if (case := hostile_at.get(n)) is not None:
            await asyncio.gather(*pending)
            pending.clear()
            properties = {
                "content_type": "application/json",
                "delivery_mode": aio_pika.DeliveryMode.PERSISTENT,
                **case.properties,
                "message_id": case.message_id,
            }
            with deep_recursion():  # our own publisher encodes the 3,000-deep table recursively
                await exchange.publish(
                    aio_pika.Message(case.body(source), **properties), CREATE_ROUTING_KEY
                )
        message_id = f"{prefix}-{n}"
        body = f'{{"email": "c{n}@example.com", "source_id": {source}}}'.encode()
        message = aio_pika.Message(
            body,
            message_id=message_id,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        pending.append(exchange.publish(message, CREATE_ROUTING_KEY))
        ids.append(message_id)
        if len(pending) >= 500:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
    return ids


@dataclass
class Burst:
    seconds: float
    valid: list[str]  # every message_id that must become one assigned interaction
    log: EventLog
    worker: WorkerProcess
    sessions: Sessions
    letters: list[Received]  # the dead letters it made, as they came
    dead: list[str]  # then the message_ids in interactions.dead


async def fresh_queues(channel: AbstractChannel) -> None:
    for name in (CREATE_QUEUE, DEAD_QUEUE):
        await channel.queue_delete(name)
    await declare_topology(channel)


async def dead_queue_ids(channel: AbstractChannel) -> list[str]:
    """The message_id of every message in interactions.dead (read off it)."""
    queue = await channel.get_queue(DEAD_QUEUE)
    ids = []
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        ids.append(message.message_id or "")
    return ids


async def test_a_dozen_hostile_messages_in_20000_valid_creates_cost_no_valid_one(
    amqp_url: str,
    channel: AbstractChannel,
    fresh_database: Callable[[], tuple[str, Sessions]],
    tmp_path: Path,
) -> None:
    stride = MESSAGES // (len(HOSTILE) + 1)
    hostile_at = {stride * (k + 1): case for k, case in enumerate(HOSTILE)}

    async def burst(hostile: dict[int, Hostile], copies: Inbox | None = None) -> Burst:
        await fresh_queues(channel)
        database_url, sessions = fresh_database()
        source, _ = await one_source(sessions, [MESSAGES + len(HOSTILE)])
        log = await event_log(channel)
        exchange = await channel.get_exchange(COMMANDS_EXCHANGE)
        env = worker_env(amqp_url, database_url, **FAST)
        async with fleet(env, tmp_path) as workers:
            worker = await workers.start("w1")
            started = time.monotonic()
            valid = await publish_burst(exchange, source, uuid.uuid4().hex[:8], hostile)
            valid += [c.message_id for c in hostile.values() if c.reason is None]
            # One `assigned` event per valid create (ample capacity): a count, checked in O(1).
            await log.wait(lambda lg: len(lg.first) >= len(valid), 600, "every create assigned")
            seconds = time.monotonic() - started
            refused = sum(c.reason is not None for c in hostile.values())
            letters = await copies.take(refused, within=60) if copies is not None else []
            assert await worker.stop() == 0, worker.output()
        dead = await dead_queue_ids(channel)
        assert log.queue_name is not None
        await channel.queue_delete(log.queue_name)  # the next burst's events are not its
        return Burst(seconds, valid, log, worker, sessions, letters, dead)

    clean = await burst({})
    copies = await dead_letter_copies(channel)
    mixed = await burst(hostile_at, copies)
    letters = mixed.letters
    print(
        f"\n{MESSAGES} creates, one worker, SQLite: clean {clean.seconds:.1f} s, "
        f"with {len(HOSTILE)} hostile {mixed.seconds:.1f} s "
        f"({mixed.seconds / clean.seconds:.2f}x)"
    )
    for run in (clean, mixed):  # what the worker logged besides one line per interaction
        other = Counter(x.get("event") for x in run.worker.lines)
        del other["interaction created"]
        print(dict(other))

    for run in (clean, mixed):
        assigned = [e for e in run.log.first.values() if e.routing_key == "interaction.assigned"]
        assert len(assigned) == len(run.log.first) == len(run.valid)  # nothing but `assigned`
        assert {e.body["message_id"] for e in assigned} == set(run.valid)
        await assert_exactly_once(run.sessions, run.valid)
        lost = run.worker.events("broker connection lost")
        assert lost == [], f"the worker lost a connection: {lost[:3]}"
    assert clean.dead == []
    assert sorted(mixed.dead) == sorted(m.message.message_id or "" for m in letters)
    assert copies.pending() == 0

    # Each hostile one dead-lettered once with its reason; no valid one among the letters.
    expected = {c.letter_id: c.reason for c in HOSTILE if c.reason is not None}
    got = {letter.message.message_id or "": letter.headers["x-error"] for letter in letters}
    assert len(letters) == len(got) == len(expected), sorted(got)
    assert got.keys() == expected.keys()
    for letter_id, reason in expected.items():
        assert reason is not None and reason in got[letter_id], (letter_id, got[letter_id])
    assert not set(got) & set(mixed.valid)
    ignored = [x for x in mixed.worker.lines if str(x.get("event")).endswith("; ignored")]
    assert [(x["reason"], x["message_id"]) for x in ignored] == [
        (ReplyToRefusal.BROKER_WOULD_REFUSE.value, "hostile-forged-reply-to")
    ]

    assert mixed.seconds <= BOUND * clean.seconds, (
        f"mixed burst {mixed.seconds:.1f} s > {BOUND} x clean {clean.seconds:.1f} s"
    )
