"""What the reliability tests observe: the event stream (deduplicated) and the database's truth."""

import asyncio
import contextlib
import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Interaction, OutboxEvent
from messaging.topology import COMMANDS_EXCHANGE, CREATE_ROUTING_KEY, EVENTS_EXCHANGE
from tests.support import seed
from tests.support.processes import until

Sessions = async_sessionmaker[AsyncSession]


@dataclass(frozen=True)
class Event:
    event_id: str
    routing_key: str
    body: dict[str, Any]

    @property
    def interaction_id(self) -> int:
        return int(self.body["interaction_id"])


@dataclass
class EventLog:
    """Every event from `interactions.events`, once per event_id, in order of first arrival.

    Re-sent events (redelivery, outbox relay) count as `duplicates`; a re-sent event must carry
    the same event_id *and the same body* as the first copy, which `record` checks.
    """

    first: dict[str, Event] = field(default_factory=dict)
    duplicates: int = 0
    copies: Counter[str] = field(default_factory=Counter)  # event_id -> extra copies received
    changed_bodies: list[str] = field(default_factory=list)
    queue_name: str | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def consume(self, queue: AbstractQueue) -> "EventLog":
        self.queue_name = queue.name
        await queue.consume(self._on_message)
        return self

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        async with message.process():
            event_id = message.message_id or ""
            event = Event(event_id, message.routing_key or "", json.loads(message.body))
            await self.record(event)

    async def record(self, event: Event) -> None:
        seen = self.first.get(event.event_id)
        if seen is None:
            self.first[event.event_id] = event
        else:
            self.duplicates += 1
            self.copies[event.event_id] += 1
            if seen.body != event.body:
                self.changed_bodies.append(event.event_id)
        async with self._changed:
            self._changed.notify_all()

    def interactions(self, routing_key: str | None = None) -> set[int]:
        return {
            e.interaction_id
            for e in self.first.values()
            if (routing_key is None or e.routing_key == routing_key) and "interaction_id" in e.body
        }

    def of(self, routing_key: str) -> list[Event]:
        return [e for e in self.first.values() if e.routing_key == routing_key]

    async def wait(self, condition: Callable[["EventLog"], bool], within: float, what: str) -> None:
        """Until `condition(self)` holds; re-checked on each arriving event, with a deadline."""
        try:
            async with asyncio.timeout(within), self._changed:
                await self._changed.wait_for(lambda: condition(self))
        except TimeoutError:
            raise AssertionError(
                f"not within {within}s: {what} (have {len(self.first)} events, "
                f"{Counter(e.routing_key for e in self.first.values())})"
            ) from None


async def event_log(channel: AbstractChannel, *, durable: bool = False) -> EventLog:
    """An EventLog fed by its own queue bound to `interactions.events` with '#'.

    `durable=True` gives a named, non-exclusive queue that outlives a dropped connection, so
    events published while the test itself is disconnected wait for it; the broker deletes it
    a minute after its last consumer left, so it does not collect every later test's events.
    """
    if durable:
        queue = await channel.declare_queue(
            f"test.events.{uuid.uuid4().hex[:8]}", durable=True, arguments={"x-expires": 60_000}
        )
    else:
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(await channel.get_exchange(EVENTS_EXCHANGE), "#")
    return await EventLog().consume(queue)


async def publish_creates(
    channel: AbstractChannel, emails: Iterable[str], source_id: int, prefix: str
) -> list[str]:
    """Publish `interaction.create` commands with confirms; their message_ids, in order."""
    exchange = await channel.get_exchange(COMMANDS_EXCHANGE)
    ids: list[str] = []
    pending = []
    for n, email in enumerate(emails):
        message_id = f"{prefix}-{n}"
        body = json.dumps({"email": email, "source_id": source_id}).encode()
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


def vhost_of(amqp_url: str) -> str:
    return unquote(urlsplit(amqp_url).path.lstrip("/")) or "/"


async def one_source(sessions: Sessions, limits: Iterable[int]) -> tuple[int, list[int]]:
    """A source served (equal weights) by one operator per limit given."""
    source = await seed.add_source(sessions, f"src-{uuid.uuid4().hex[:6]}")
    operators = [
        await seed.add_operator(sessions, f"op{n}", limit) for n, limit in enumerate(limits)
    ]
    await seed.set_weights(sessions, source, dict.fromkeys(operators, 10))
    return source, operators


async def message_id_counts(sessions: Sessions) -> Counter[str | None]:
    async with sessions() as session:
        return Counter((await session.scalars(select(Interaction.message_id))).all())


async def interaction_count(sessions: Sessions) -> int:
    return int(await seed.scalar(sessions, select(func.count()).select_from(Interaction)))


async def outbox(sessions: Sessions) -> list[OutboxEvent]:
    async with sessions() as session:
        return list((await session.scalars(select(OutboxEvent).order_by(OutboxEvent.id))).all())


async def assert_exactly_once(sessions: Sessions, message_ids: Iterable[str]) -> None:
    """Each published message_id is exactly one Interaction, and nothing else exists."""
    counts = await message_id_counts(sessions)
    expected = set(message_ids)
    missing = expected - set(counts)
    doubled = {m: n for m, n in counts.items() if n > 1}
    extra = set(counts) - expected
    assert not missing, f"{len(missing)} messages became no interaction, e.g. {sorted(missing)[:5]}"
    assert not doubled, f"messages that became several interactions: {list(doubled.items())[:5]}"
    assert not extra, f"interactions nobody asked for: {sorted(map(str, extra))[:5]}"


async def assert_every_event_published(sessions: Sessions, log: EventLog, within: float) -> None:
    """Every Interaction has events; every outbox row is confirmed and arrived, unchanged.

    The outbox holds every event the database committed; the log holds what a consumer received.
    A DB poll with a deadline: the relay marks rows published on its own schedule.
    """

    async def settled() -> bool:
        rows = await outbox(sessions)
        return all(r.event_id in log.first and r.published_at is not None for r in rows)

    with contextlib.suppress(TimeoutError):
        await until(settled, within=within, what="outbox relayed and marked")
    rows = await outbox(sessions)
    never_sent = [r.event_id for r in rows if r.event_id not in log.first]
    assert not never_sent, f"{len(never_sent)} committed events never arrived: {never_sent[:5]}"
    unmarked = [r.event_id for r in rows if r.published_at is None]
    assert not unmarked, f"{len(unmarked)} events arrived but are not marked published"
    for row in rows:
        got = log.first[row.event_id]
        assert (got.routing_key, got.body) == (row.routing_key, json.loads(row.body))
    unknown = set(log.first) - {r.event_id for r in rows}
    assert not unknown, f"events with ids the outbox never had: {sorted(unknown)[:5]}"
    assert not log.changed_bodies, f"re-sent events with a different body: {log.changed_bodies}"
    async with sessions() as session:
        interaction_ids = set((await session.scalars(select(Interaction.id))).all())
    assert {r.interaction_id for r in rows} == interaction_ids == log.interactions()


LIFECYCLE = ("interaction.waiting", "interaction.assigned", "interaction.closed")


async def assert_event_order(sessions: Sessions, log: EventLog, *, arrival: bool) -> None:
    """Per interaction, committed events follow the lifecycle (waiting, assigned, closed; each at
    most once, never back); with `arrival`, their first copies also arrived in that order."""
    committed: dict[int, list[str]] = {}
    for row in await outbox(sessions):
        committed.setdefault(row.interaction_id, []).append(row.event_id)
    for interaction_id, event_ids in committed.items():
        keys = [log.first[e].routing_key for e in event_ids]
        steps = [LIFECYCLE.index(k) for k in keys]
        assert steps == sorted(set(steps)), f"interaction {interaction_id} committed {keys}"
        if arrival:
            arrived = [e for e in log.first if e in set(event_ids)]
            assert arrived == event_ids, f"interaction {interaction_id} arrived out of order"
