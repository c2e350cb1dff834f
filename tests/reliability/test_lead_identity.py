"""One lead per person under concurrent workers (issue 14): three workers on PostgreSQL, and two
on one SQLite file, race on the same new phone numbers and on merging overlapping leads.

Phase A: ten people write by phone, six times each, in different spellings, all at once: each
phone must end as one lead. Phase B: the same people then write by e-mail and by handle (new
leads), and then a burst of commands bridging two of their contacts (e-mail+handle,
handle+phone, phone+e-mail) arrives in shuffled order: the workers merge overlapping leads
concurrently. Each person must end as one lead — the phone's, the oldest — holding all three
contacts, every interaction moved to it, and every command processed exactly once.
"""

import asyncio
import json
import uuid
from collections import Counter
from random import Random
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel
from sqlalchemy import select

from db.models import Interaction, Lead
from messaging.topology import COMMANDS_EXCHANGE, CREATE_ROUTING_KEY
from tests.reliability.conftest import FleetFactory, Sessions
from tests.reliability.helpers import (
    EventLog,
    assert_every_event_published,
    assert_exactly_once,
    event_log,
    one_source,
)
from tests.support.seed import lead_contacts

pytestmark = pytest.mark.slow
PEOPLE = 10
SPELLINGS = ["+7 999 000-00-{:02d}", "+7(999)0000{:03d}", "+7999000{:04d}"]


def phone(n: int) -> str:
    return f"+7999000{n:04d}"


def email(n: int) -> str:
    return f"person{n}@example.com"


def handle(n: int) -> str:
    return f"tg:{1000 + n}"


async def publish(channel: AbstractChannel, bodies: list[dict[str, Any]], prefix: str) -> list[str]:
    exchange = await channel.get_exchange(COMMANDS_EXCHANGE)
    ids = [f"{prefix}-{n}" for n in range(len(bodies))]
    await asyncio.gather(
        *(
            exchange.publish(
                aio_pika.Message(
                    json.dumps(body).encode(),
                    message_id=message_id,
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                CREATE_ROUTING_KEY,
            )
            for body, message_id in zip(bodies, ids, strict=True)
        )
    )
    return ids


async def routed(log: EventLog, message_ids: list[str]) -> None:
    wanted = set(message_ids)
    await log.wait(
        lambda lg: wanted <= {e.body.get("message_id") for e in lg.first.values()},
        within=60,
        what=f"events for {len(wanted)} commands",
    )


async def run_story(
    fleet_size: int,
    sessions: Sessions,
    database_url: str,
    workers: FleetFactory,
    channel: AbstractChannel,
) -> None:
    source, _ = await one_source(sessions, [10_000])
    log = await event_log(channel)
    rng = Random(14)
    run = uuid.uuid4().hex[:6]
    async with workers(database_url, prefetch_count=8, batch_size=4) as fleet:
        started = [await fleet.start(f"w{n}") for n in range(fleet_size)]
        by_phone = [
            {"phone": spelling.format(n), "source_id": source}
            for n in range(PEOPLE)
            for spelling in SPELLINGS * 2
        ]
        rng.shuffle(by_phone)
        phase_a = await publish(channel, by_phone, f"{run}-a")
        await routed(log, phase_a)
        phone_leads = {e.body["phone"]: e.body["lead_uuid"] for e in log.first.values()}

        separate = [{"email": email(n), "source_id": source} for n in range(PEOPLE)]
        separate += [{"handle": handle(n), "source_id": source} for n in range(PEOPLE)]
        phase_b1 = await publish(channel, separate, f"{run}-b1")
        await routed(log, phase_b1)

        bridges = [
            body
            for n in range(PEOPLE)
            for body in (
                *[{"email": email(n), "handle": handle(n), "source_id": source}] * 3,
                *[{"handle": handle(n), "phone": phone(n), "source_id": source}] * 3,
                *[{"phone": phone(n), "email": email(n), "source_id": source}] * 2,
            )
        ]
        rng.shuffle(bridges)
        phase_b2 = await publish(channel, bridges, f"{run}-b2")
        await routed(log, phase_b2)
        await assert_every_event_published(sessions, log, within=10)
        assert all(w.events("interaction created") for w in started), "a worker idled"

    await assert_exactly_once(sessions, [*phase_a, *phase_b1, *phase_b2])
    assert len(phone_leads) == PEOPLE, phone_leads  # phase A: one lead per phone
    expected = {
        phone_leads[phone(n)]: {("phone", phone(n)), ("email", email(n)), ("handle", handle(n))}
        for n in range(PEOPLE)
    }
    assert await lead_contacts(sessions) == expected  # one lead per person: the oldest
    async with sessions() as session:
        lead_of = set((await session.scalars(select(Interaction.lead_uuid))).all())
        shown = {lead.uuid: (lead.email, lead.phone, lead.handle) for lead in
                 (await session.scalars(select(Lead))).all()}  # fmt: skip
    assert lead_of == set(expected)
    for n in range(PEOPLE):
        assert shown[phone_leads[phone(n)]] == (email(n), phone(n), handle(n))
    merged = [e.body for e in log.first.values() if e.routing_key == "lead.merged"]
    assert merged, "no merge happened"
    # Each person's e-mail lead and handle lead were merged away exactly once (directly into
    # the phone's lead, or first into each other: a survivor may be merged on later).
    gone = Counter(u for m in merged for u in m["merged_lead_uuids"])
    assert len(gone) == 2 * PEOPLE and set(gone.values()) == {1}
    assert not set(gone) & set(expected)


async def test_three_postgres_workers_make_one_lead_per_person(
    postgres_url: str, pg_sessions: Sessions, workers: FleetFactory, channel: AbstractChannel
) -> None:
    await run_story(3, pg_sessions, postgres_url, workers, channel)


async def test_two_sqlite_workers_make_one_lead_per_person(
    sqlite_url: str, sqlite_sessions: Sessions, workers: FleetFactory, channel: AbstractChannel
) -> None:
    await run_story(2, sqlite_sessions, sqlite_url, workers, channel)
