"""Waiting SLAs under several workers (issue 15.3 and 15.5): every interaction that waits past
its source's `max_wait_s` gets exactly one `interaction.overdue`, within a few seconds of the
line, however many workers run, and still after the worker that would have fired it is killed:
the timer lives in the database, not in one process's memory."""

import uuid
from collections import Counter
from datetime import datetime

import pytest
from aio_pika.abc import AbstractChannel
from sqlalchemy import select

from db.models import Interaction
from tests.reliability.conftest import KILLED_LEASE_S, FleetFactory, Sessions
from tests.reliability.helpers import assert_every_event_published, event_log, publish_creates
from tests.support import seed

pytestmark = pytest.mark.slow
WAITING = 30
MAX_WAIT_S = 2
LATE_BY_AT_MOST_S = 4.0  # the timers tick every second; a loaded machine adds a little


async def test_overdue_exactly_once_with_three_workers_and_one_killed(
    postgres_url: str, pg_sessions: Sessions, workers: FleetFactory, channel: AbstractChannel
) -> None:
    source = await seed.add_source(pg_sessions, "timed", max_wait_s=MAX_WAIT_S)
    nobody = await seed.add_operator(pg_sessions, "on a break", 0)  # never free: all wait
    await seed.set_weights(pg_sessions, source, {nobody: 10})
    log = await event_log(channel)
    async with workers(postgres_url) as fleet:
        started = [await fleet.start(f"w{n}") for n in range(3)]
        emails = [f"late{n}@example.com" for n in range(WAITING)]
        await publish_creates(channel, emails, source, uuid.uuid4().hex[:8])
        await log.wait(lambda lg: len(lg.of("interaction.waiting")) == WAITING, 30, "waiting")
        await started[0].kill()  # whichever worker's timer would have fired: gone
        await log.wait(
            lambda lg: len(lg.of("interaction.overdue")) >= WAITING, 30, "every overdue event"
        )
        await assert_every_event_published(pg_sessions, log, within=10 + KILLED_LEASE_S)

    overdue = log.of("interaction.overdue")
    assert Counter(e.interaction_id for e in overdue) == dict.fromkeys(
        log.interactions("interaction.waiting"), 1
    )  # once each: no worker's sweep repeated another's
    async with pg_sessions() as session:
        rows = await session.execute(select(Interaction.id, Interaction.created_at))
        created = {interaction_id: at for interaction_id, at in rows}
        marked = (await session.scalars(select(Interaction.overdue_at))).all()
    assert all(at is not None for at in marked)
    for event in overdue:
        sent = datetime.fromisoformat(event.body["created_at"])
        waited = (sent - created[event.interaction_id]).total_seconds()
        assert MAX_WAIT_S <= waited <= MAX_WAIT_S + LATE_BY_AT_MOST_S, (
            event.interaction_id,
            waited,
        )
    assert {e.body["status"] for e in overdue} == {"waiting"}
