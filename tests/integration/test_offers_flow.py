"""Offers end to end on the real broker, on SQLite and PostgreSQL: offered, accepted over
`interaction.accept`, refused accepts dead-lettered with their reason, and expiry driven by
the worker's timer from the database."""

import time

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support import seed
from tests.support.amqp import Bot, Inbox
from worker.app import Worker

Sessions = async_sessionmaker[AsyncSession]


async def offering_source(sessions: Sessions, timeout_s: int, *limits: int) -> tuple[int, ...]:
    """A source with `accept_timeout_s` and operators of these limits, equally weighted."""
    source = await seed.add_source(sessions, "phone", accept_timeout_s=timeout_s)
    operators = [
        await seed.add_operator(sessions, f"op{i}", limit) for i, limit in enumerate(limits)
    ]
    await seed.set_weights(sessions, source, dict.fromkeys(operators, 10))
    return (source, *operators)


async def test_an_offer_is_accepted_over_amqp_and_wrong_accepts_are_dead_lettered(
    sessions: Sessions, worker: Worker, bot: Bot, events: Inbox, dead_letters: Inbox
) -> None:
    source, ann, bob = await offering_source(sessions, 60, 1, 1)
    await bot.create("a@example.com", source)
    offered = await events.next()
    assert (offered.routing_key, offered.body["status"], offered.body["reason"]) == (
        "interaction.offered",
        "offered",
        "weighted",
    )
    interaction_id, holder = offered.body["interaction_id"], offered.body["operator_id"]
    other = bob if holder == ann else ann
    assert (await seed.operators(sessions))[holder].current_load == 1

    await bot.accept(interaction_id, other)
    await bot.accept(999_999, holder)
    await bot.accept(interaction_id, holder, correlation_id="desk-1")
    accepted = await events.next()
    refusals = {d.headers["x-error"]: d for d in await dead_letters.take(2)}

    assert (accepted.routing_key, accepted.body["status"], accepted.body["operator_id"]) == (
        "interaction.accepted",
        "assigned",
        holder,
    )
    assert accepted.message.correlation_id == "desk-1"
    wrong = f"interaction {interaction_id} is offered to operator {holder}, not to operator {other}"
    assert set(refusals) == {wrong, "unknown interaction 999999"}
    assert refusals[wrong].headers["x-original-routing-key"] == "interaction.accept"
    [row] = await seed.interactions(sessions)
    assert (row.status, row.operator_id, row.offer_expires_at) == ("assigned", holder, None)
    assert (await seed.operators(sessions))[holder].current_load == 1


async def test_an_unanswered_offer_expires_and_moves_on_by_the_workers_timer(
    sessions: Sessions, worker: Worker, bot: Bot, events: Inbox, dead_letters: Inbox
) -> None:
    source, ann, bob = await offering_source(sessions, 1, 1, 1)
    await bot.create("a@example.com", source)
    offered = await events.next()
    first = offered.body["operator_id"]
    started = time.monotonic()

    expired, offered_again = await events.take(2, within=15)
    expired_after = time.monotonic() - started

    assert (expired.routing_key, expired.body["operator_id"], expired.body["status"]) == (
        "interaction.offer_expired",
        first,
        "waiting",
    )
    assert 0.5 <= expired_after <= 5  # the deadline is 1 s; the timer looks every second
    assert offered_again.routing_key == "interaction.offered"
    assert offered_again.body["operator_id"] == (bob if first == ann else ann)
    assert offered_again.body["reason"] == "drain"

    await bot.accept(offered.body["interaction_id"], first)
    late = await dead_letters.next()
    assert late.headers["x-error"] == (
        f"the offer of interaction {offered.body['interaction_id']} to operator {first} expired"
    )
