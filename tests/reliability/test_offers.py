"""Offers under several workers (issue 15.4 and 15.5): every offer has exactly one outcome —
accepted or expired — when accepts race the deadline across three PostgreSQL workers and two
SQLite workers; and an offer still expires on time after the worker that made it is killed
with -9, because the deadline lives in the database, not in one process's memory."""

import asyncio
import json
import uuid
from collections import Counter
from datetime import UTC, datetime
from random import Random

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel
from sqlalchemy import select

from db.models import Interaction, Operator
from messaging.topology import ACCEPT_ROUTING_KEY, COMMANDS_EXCHANGE
from tests.reliability.conftest import KILLED_LEASE_S, FleetFactory, Sessions
from tests.reliability.helpers import (
    EventLog,
    assert_every_event_published,
    event_log,
    publish_creates,
)
from tests.support import seed
from tests.support.amqp import dead_letter_inbox
from tests.support.processes import WorkerProcess

pytestmark = pytest.mark.slow
OFFERS = 60
SEED = 15
LATE_BY_AT_MOST_S = 4.0  # the timers tick every second; a loaded machine adds a little


def outcomes(log: EventLog, interaction_id: int, operator_id: int) -> int:
    """Accepted or expired events of this interaction's offer to this operator."""
    return sum(
        1
        for key in ("interaction.accepted", "interaction.offer_expired")
        for event in log.of(key)
        if (event.interaction_id, event.body["operator_id"]) == (interaction_id, operator_id)
    )


def every_interaction_settled(log: EventLog) -> bool:
    """Each offered interaction accepted, or expired for both operators (it then waits: there
    is nobody left to offer it to). Not "every offer so far has an outcome": between an
    expiry and the re-offer that follows it, that holds for a moment too early."""
    accepted = Counter(e.interaction_id for e in log.of("interaction.accepted"))
    expired = Counter(e.interaction_id for e in log.of("interaction.offer_expired"))
    offered = log.interactions("interaction.offered")
    return len(offered) >= OFFERS and all(accepted[i] or expired[i] >= 2 for i in offered)


async def offering_source(sessions: Sessions, timeout_s: int) -> tuple[int, list[int]]:
    source = await seed.add_source(sessions, "phone", accept_timeout_s=timeout_s)
    operators = [await seed.add_operator(sessions, name, 100) for name in ("ann", "bob")]
    await seed.set_weights(sessions, source, dict.fromkeys(operators, 10))
    return source, operators


async def assert_loads_exact(sessions: Sessions) -> None:
    """Each operator's `current_load` is its assigned plus offered interactions."""
    async with sessions() as session:
        rows = (await session.execute(select(Interaction.status, Interaction.operator_id))).all()
        loads = dict((await session.execute(select(Operator.id, Operator.current_load))).all())
    holding = Counter(op for status, op in rows if status in ("assigned", "offered"))
    assert loads == {op: holding.get(op, 0) for op in loads}


async def accept_at(channel: AbstractChannel, moment: float, body: dict[str, int]) -> None:
    """Publish an `interaction.accept` at this wall-clock moment (at once if it has passed)."""
    await asyncio.sleep(max(0.0, moment - datetime.now(UTC).timestamp()))
    exchange = await channel.get_exchange(COMMANDS_EXCHANGE)
    message = aio_pika.Message(
        json.dumps(body).encode(),
        message_id=uuid.uuid4().hex,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )
    await exchange.publish(message, ACCEPT_ROUTING_KEY)


async def test_accepts_racing_the_deadline_on_three_workers_give_one_outcome_per_offer(
    postgres_url: str, pg_sessions: Sessions, workers: FleetFactory, channel: AbstractChannel
) -> None:
    await accepts_racing_the_deadline(postgres_url, pg_sessions, workers, channel, 3)


async def test_accepts_racing_the_deadline_on_two_sqlite_workers_give_one_outcome_per_offer(
    sqlite_url: str, sqlite_sessions: Sessions, workers: FleetFactory, channel: AbstractChannel
) -> None:
    await accepts_racing_the_deadline(sqlite_url, sqlite_sessions, workers, channel, 2)


async def accepts_racing_the_deadline(
    url: str, sessions: Sessions, workers: FleetFactory, channel: AbstractChannel, count: int
) -> None:
    """Accepts sent around each offer's deadline, before or after, across `count` workers:
    every offer ends accepted or expired, never both, and nothing is lost."""
    source, _ = await offering_source(sessions, timeout_s=1)
    log = await event_log(channel)
    dead = await dead_letter_inbox(channel)
    rng = Random(SEED)
    async with workers(url) as fleet:
        for n in range(count):
            await fleet.start(f"w{n}")
        emails = [f"caller{n}@example.com" for n in range(OFFERS)]
        await publish_creates(channel, emails, source, uuid.uuid4().hex[:8])
        await log.wait(lambda lg: len(lg.of("interaction.offered")) >= OFFERS, 30, "offers")
        first_offers = log.of("interaction.offered")[:OFFERS]
        accepts = []
        for offer in first_offers:  # each accepted around its deadline, before or after
            offered_at = datetime.fromisoformat(offer.body["created_at"]).timestamp()
            body = {
                "interaction_id": offer.interaction_id,
                "operator_id": offer.body["operator_id"],
            }
            accepts.append(accept_at(channel, offered_at + rng.uniform(0.3, 1.7), body))
        await asyncio.gather(*accepts)
        await log.wait(every_interaction_settled, 30, "every interaction accepted or waiting")
        refused = await dead.take(OFFERS - len(log.of("interaction.accepted")), within=30)
        await assert_every_event_published(sessions, log, within=10)

    assert {e.interaction_id for e in first_offers} == log.interactions("interaction.offered")
    for offer in log.of("interaction.offered"):  # first offers and re-offers after an expiry
        assert outcomes(log, offer.interaction_id, offer.body["operator_id"]) == 1, offer.body
    accepted = log.of("interaction.accepted")
    assert 0 < len(accepted) < OFFERS  # the race went both ways
    assert Counter(e.interaction_id for e in accepted).most_common(1)[0][1] == 1
    for letter in refused:  # a lost race is refused with its reason, never dropped
        assert letter.headers["x-error"].endswith("expired"), letter.headers["x-error"]
    assert dead.pending() == 0
    async with sessions() as session:
        statuses = dict((await session.execute(select(Interaction.id, Interaction.status))).all())
    assert "offered" not in statuses.values()
    assert {i for i, s in statuses.items() if s == "assigned"} == {
        e.interaction_id for e in accepted
    }
    await assert_loads_exact(sessions)


async def test_an_offer_expires_on_time_after_its_worker_is_killed_on_postgres(
    postgres_url: str, pg_sessions: Sessions, workers: FleetFactory, channel: AbstractChannel
) -> None:
    await an_offer_expires_on_time_after_its_worker_is_killed(
        postgres_url, pg_sessions, workers, channel
    )


async def test_an_offer_expires_on_time_after_its_worker_is_killed_on_sqlite(
    sqlite_url: str, sqlite_sessions: Sessions, workers: FleetFactory, channel: AbstractChannel
) -> None:
    await an_offer_expires_on_time_after_its_worker_is_killed(
        sqlite_url, sqlite_sessions, workers, channel
    )


async def the_one_that_logged(event: str, workers: list[WorkerProcess]) -> WorkerProcess:
    """The worker that logs `event` first (its line may come just after what it published)."""
    waits = {asyncio.create_task(w.wait_for(event, within=10)): w for w in workers}
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
    first = done.pop()
    first.result()  # a worker that exited, or none within the time, fails here
    return waits[first]


async def an_offer_expires_on_time_after_its_worker_is_killed(
    url: str, sessions: Sessions, workers: FleetFactory, channel: AbstractChannel
) -> None:
    source, operators = await offering_source(sessions, timeout_s=3)
    log = await event_log(channel)
    async with workers(url) as fleet:
        # Both running before the offer: the deadline is kept by a worker already up, so the
        # time a new one takes to start on a busy host is not measured as lateness.
        started = [await fleet.start("a"), await fleet.start("b")]
        await publish_creates(channel, ["caller@example.com"], source, uuid.uuid4().hex[:8])
        await log.wait(lambda lg: len(lg.of("interaction.offered")) == 1, 30, "the offer")
        holder = await the_one_that_logged("interaction created", started)
        await holder.kill()  # the worker that made the offer: gone
        await log.wait(lambda lg: len(lg.of("interaction.offer_expired")) == 2, 30, "expiries")
        await assert_every_event_published(sessions, log, within=10 + KILLED_LEASE_S)

    assert not holder.events("offer expired"), "killed after the deadline: it expired the offer"

    first, second = log.of("interaction.offered")
    expired = log.of("interaction.offer_expired")
    assert [e.body["operator_id"] for e in expired] == [
        first.body["operator_id"],
        second.body["operator_id"],
    ]  # each operator offered once; never back to the one whose offer expired
    assert set(operators) == {first.body["operator_id"], second.body["operator_id"]}
    offered_at = datetime.fromisoformat(first.body["created_at"])
    waited = (datetime.fromisoformat(expired[0].body["created_at"]) - offered_at).total_seconds()
    assert 3 <= waited <= 3 + LATE_BY_AT_MOST_S
    [row] = await seed.interactions(sessions)
    assert (row.status, row.operator_id) == ("waiting", None)
    await assert_loads_exact(sessions)
