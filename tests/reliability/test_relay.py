"""Issue 22.1: the outbox relay re-sends only what is really stuck.

Three PostgreSQL workers work off a backlog with a short relay interval. Without a fault, a
live worker's events are never re-sent by another (confirms lagging behind the interval made
58 % duplicate deliveries before the lease). With one worker killed by -9 in the middle,
every event still arrives, the only duplicates are that worker's events, and each of its
stuck events was claimed by exactly one of the survivors.
"""

import uuid

import pytest
from aio_pika.abc import AbstractChannel
from sqlalchemy import select

from db.models import OutboxEvent
from tests.reliability.conftest import FleetFactory, Sessions
from tests.reliability.helpers import (
    EventLog,
    assert_every_event_published,
    assert_exactly_once,
    event_log,
    one_source,
    publish_creates,
)
from tests.support.processes import WorkerProcess
from worker.relay import lease_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
MESSAGES = 6000
RELAY_INTERVAL_S = 0.3
MAX_DUPLICATE_SHARE = 0.005


def duplicate_share(log: EventLog) -> float:
    return log.duplicates / len(log.first)


def owner_of(worker: WorkerProcess) -> str:
    return str(worker.events("worker started")[0]["owner"])


async def test_three_workers_with_a_short_relay_interval_send_each_event_once(
    pg_sessions: Sessions, postgres_url: str, workers: FleetFactory, channel: AbstractChannel
) -> None:
    source, _ = await one_source(pg_sessions, [2000, 2000, 2000])
    log = await event_log(channel)
    emails = [f"lead{n}@example.com" for n in range(MESSAGES)]

    async with workers(postgres_url, outbox_relay_interval_s=RELAY_INTERVAL_S) as fleet:
        # All three consuming before the backlog arrives: started one by one after it, the
        # first could route it all while the last was still starting (a worker idled).
        started = [await fleet.start(f"w{n}") for n in range(3)]
        message_ids = await publish_creates(channel, emails, source, uuid.uuid4().hex[:8])
        await log.wait(lambda lg: len(lg.interactions()) == MESSAGES, 180, "every interaction")
        await assert_every_event_published(pg_sessions, log, within=30)

    share = duplicate_share(log)
    print(
        f"\n22.1 no fault: {len(log.first)} events, {log.duplicates} duplicate deliveries "
        f"({share:.3%}) at OUTBOX_RELAY_INTERVAL_S={RELAY_INTERVAL_S}, 3 workers"
    )
    assert share <= MAX_DUPLICATE_SHARE
    assert all(w.events("interaction created") for w in started), "a worker idled"
    await assert_exactly_once(pg_sessions, message_ids)


async def test_a_killed_workers_events_arrive_and_only_they_are_sent_twice(
    pg_sessions: Sessions, postgres_url: str, workers: FleetFactory, channel: AbstractChannel
) -> None:
    source, _ = await one_source(pg_sessions, [2000, 2000, 2000])
    log = await event_log(channel)
    emails = [f"lead{n}@example.com" for n in range(MESSAGES)]
    message_ids = await publish_creates(channel, emails, source, uuid.uuid4().hex[:8])

    async with workers(postgres_url, outbox_relay_interval_s=RELAY_INTERVAL_S) as fleet:
        victim, *survivors = [await fleet.start(f"w{n}") for n in range(3)]
        await victim.wait_count("interaction created", 500, within=60)
        assert await victim.kill() == -9
        owner = owner_of(victim)
        async with pg_sessions() as session:  # before its lease runs out: nobody claimed yet
            owned = (
                await session.execute(
                    select(OutboxEvent.event_id, OutboxEvent.published_at).where(
                        OutboxEvent.owner == owner
                    )
                )
            ).all()
        stuck = {event_id for event_id, published_at in owned if published_at is None}
        await log.wait(lambda lg: len(lg.interactions()) == MESSAGES, 180, "every interaction")
        lease_s = lease_for(RELAY_INTERVAL_S).total_seconds()
        await assert_every_event_published(pg_sessions, log, within=lease_s + 30)

    claimed = sum(
        int(line.get("claimed", 0)) for w in survivors for line in w.events("outbox relayed")
    )
    print(
        f"\n22.1 kill -9: {len(log.first)} events, {log.duplicates} duplicate deliveries "
        f"({duplicate_share(log):.3%}); the killed worker owned {len(owned)} events, "
        f"{len(stuck)} unconfirmed, claimed {claimed} times by the survivors"
    )
    assert set(log.copies) <= {event_id for event_id, _ in owned}, "a live worker's event twice"
    assert claimed == len(stuck), "each stuck event is claimed by exactly one relay"
    assert MESSAGES - len(victim.events("interaction created")) >= 1000, "killed too late"
    await assert_exactly_once(pg_sessions, message_ids)
