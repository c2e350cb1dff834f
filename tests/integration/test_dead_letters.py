"""Every class of bad input goes to interactions.dead with its reason; the worker carries on."""

import json

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.messages import PAYLOAD_LIMIT_BYTES
from tests.support import seed
from tests.support.amqp import Bot, Inbox
from worker.app import Worker

Sessions = async_sessionmaker[AsyncSession]

BAD_CREATES = [
    pytest.param(b"{not json", "body is not JSON", id="not-json"),
    pytest.param(
        b'{"source_id": 1}', "at least one of email, phone, handle is required", id="wrong-shape"
    ),
    pytest.param(
        b'{"email": "nobody", "source_id": 1}', "invalid CreateInteraction: email", id="bad-email"
    ),
    pytest.param(
        b'{"email": "a@example.com", "source_id": 999}',
        "unknown source_id 999",
        id="unknown-source",
    ),
    pytest.param(
        json.dumps(
            {"email": "a@example.com", "source_id": 1, "payload": "x" * PAYLOAD_LIMIT_BYTES}
        ).encode(),
        "payload is 65538 bytes",
        id="payload-over-64k",
    ),
    pytest.param(b"x" * (PAYLOAD_LIMIT_BYTES + 5000), "over the", id="body-over-limit"),
]


async def configured_source(sessions: Sessions) -> int:
    source = await seed.add_source(sessions, "web")
    operator = await seed.add_operator(sessions, "Bob", 10)
    await seed.set_weights(sessions, source, {operator: 10})
    assert source == 1
    return source


@pytest.mark.parametrize(("body", "reason"), BAD_CREATES)
async def test_bad_create_is_dead_lettered_with_reason_and_next_one_processed(
    sessions: Sessions,
    worker: Worker,
    bot: Bot,
    events: Inbox,
    dead_letters: Inbox,
    body: bytes,
    reason: str,
) -> None:
    source = await configured_source(sessions)
    await bot.raw(
        "interaction.create",
        body,
        message_id="bad-1",
        correlation_id="c-9",
        headers={"x-bot": "telegram"},
    )
    await bot.create("good@example.com", source)

    dead = await dead_letters.next()
    good = await events.next()

    assert reason in dead.headers["x-error"]
    assert dead.message.body == body  # the original body, untouched
    assert dead.message.message_id == "bad-1"
    assert dead.message.correlation_id == "c-9"
    assert dead.headers["x-bot"] == "telegram"
    assert dead.headers["x-original-routing-key"] == "interaction.create"
    assert good.body["email"] == "good@example.com"
    assert [r.lead_uuid for r in await seed.interactions(sessions)] == [good.body["lead_uuid"]]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(b'{"interaction_id": 4242}', "unknown interaction 4242", id="unknown"),
        pytest.param(b'{"interaction_id": "abc"}', "interaction_id", id="wrong-type"),
        pytest.param(b"[]", "invalid CloseInteraction", id="wrong-shape"),
    ],
)
async def test_bad_close_is_dead_lettered(
    sessions: Sessions,
    worker: Worker,
    bot: Bot,
    events: Inbox,
    dead_letters: Inbox,
    body: bytes,
    reason: str,
) -> None:
    source = await configured_source(sessions)
    await bot.raw("interaction.close", body)
    await bot.create("good@example.com", source)

    dead = await dead_letters.next()
    await events.next()

    assert reason in dead.headers["x-error"]
    assert dead.headers["x-original-routing-key"] == "interaction.close"


async def test_a_bad_message_in_a_batch_does_not_fail_its_batch_mates(
    sessions: Sessions, worker: Worker, bot: Bot, events: Inbox, dead_letters: Inbox
) -> None:
    source = await configured_source(sessions)
    for i in range(10):
        await bot.create(f"lead{i}@example.com", source if i != 4 else 77)

    received = await events.take(9)
    dead = await dead_letters.next()

    assert "unknown source_id 77" in dead.headers["x-error"]
    assert len({e.body["interaction_id"] for e in received}) == 9
    assert len(await seed.interactions(sessions)) == 9
    assert dead_letters.pending() == 0
