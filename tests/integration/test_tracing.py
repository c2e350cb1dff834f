"""A bot's W3C trace through the worker, on the real broker, on SQLite and PostgreSQL.

OpenTelemetry off (the default): the inbound `traceparent` goes on unchanged. On (an
in-memory exporter): the events name the worker's own span as their parent, same trace.
"""

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from structlog.testing import capture_logs

from db.models import OutboxEvent
from messaging import tracing
from schemas.settings import Settings
from tests.conftest import running_worker
from tests.integration.test_worker_flow import one_operator_source
from tests.support import seed
from tests.support.amqp import Bot, Inbox
from tests.support.spans import named
from worker.app import Worker

Sessions = async_sessionmaker[AsyncSession]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
CLOSE_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CLOSE_TRACEPARENT = f"00-{CLOSE_TRACE_ID}-b7ad6b7169203331-01"


async def wait_until(check: Callable[[], bool], within: float = 5.0) -> None:
    """For what no message marks (a log line written after the ack, a span ended later)."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 (bounded poll)
            await asyncio.sleep(0.02)


def lines(logs: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == event]


async def test_a_creates_trace_goes_on_its_event_and_its_log_line(
    sessions: Sessions, worker: Worker, bot: Bot, events: Inbox
) -> None:
    source, _ = await one_operator_source(sessions, limit=5)
    with capture_logs() as logs:
        message_id = await bot.create(
            "a@example.com",
            source,
            headers={"traceparent": TRACEPARENT, "tracestate": "rojo=00f067aa0ba902b7"},
        )
        event = await events.next()
        await wait_until(lambda: bool(lines(logs, "interaction created")))

    assert event.routing_key == "interaction.assigned"
    assert event.headers == {"traceparent": TRACEPARENT, "tracestate": "rojo=00f067aa0ba902b7"}
    [line] = lines(logs, "interaction created")
    assert (line["message_id"], line["trace_id"]) == (message_id, TRACE_ID)
    stored = await seed.scalar(sessions, select(OutboxEvent.traceparent))
    assert stored == TRACEPARENT


async def test_a_close_and_the_drain_it_causes_continue_the_closes_trace(
    sessions: Sessions, worker: Worker, bot: Bot, events: Inbox
) -> None:
    source, operator = await one_operator_source(sessions, limit=1)
    await bot.create("first@example.com", source, headers={"traceparent": TRACEPARENT})
    await bot.create("second@example.com", source)  # untraced; waits
    assigned, waiting = sorted(await events.take(2), key=lambda e: e.body["interaction_id"])
    assert (assigned.routing_key, waiting.routing_key) == (
        "interaction.assigned",
        "interaction.waiting",
    )
    assert "traceparent" not in waiting.headers

    await bot.close(assigned.body["interaction_id"], headers={"traceparent": CLOSE_TRACEPARENT})
    closed, drained = await events.take(2)

    assert (closed.routing_key, drained.routing_key) == (
        "interaction.closed",
        "interaction.assigned",
    )
    assert drained.body["interaction_id"] == waiting.body["interaction_id"]
    assert drained.body["operator_id"] == operator
    assert closed.headers["traceparent"] == drained.headers["traceparent"] == CLOSE_TRACEPARENT


@pytest.mark.parametrize(
    "bad",
    [
        "not-a-traceparent",
        f"00-{'0' * 32}-00f067aa0ba902b7-01",
        TRACEPARENT.upper(),
        12345,
        {"nested": TRACEPARENT},
    ],
)
async def test_an_invalid_traceparent_is_ignored_and_the_message_routed(
    sessions: Sessions, worker: Worker, bot: Bot, events: Inbox, bad: object
) -> None:
    source, operator = await one_operator_source(sessions, limit=5)
    with capture_logs() as logs:
        await bot.create("a@example.com", source, headers={"traceparent": bad, "x-bot": "tg"})
        event = await events.next()
        await wait_until(lambda: bool(lines(logs, "interaction created")))

    assert (event.routing_key, event.body["operator_id"]) == ("interaction.assigned", operator)
    assert "traceparent" not in event.headers
    [line] = lines(logs, "interaction created")
    assert line["trace_id"] is None
    [ignored] = lines(logs, "traceparent is not W3C trace context; ignored")
    assert ignored["log_level"] == "debug"


async def test_a_dead_letter_keeps_its_trace_and_logs_its_trace_id(
    sessions: Sessions, worker: Worker, bot: Bot, dead_letters: Inbox
) -> None:
    with capture_logs() as logs:
        await bot.create("a@example.com", 404, headers={"traceparent": TRACEPARENT})
        dead = await dead_letters.next()
        await wait_until(lambda: bool(lines(logs, "message dead-lettered")))

    assert "unknown source_id 404" in dead.headers["x-error"]
    assert dead.headers["traceparent"] == TRACEPARENT
    [line] = lines(logs, "message dead-lettered")
    assert line["trace_id"] == TRACE_ID


async def test_an_event_the_relay_sends_again_keeps_its_traceparent(
    settings: Settings, sessions: Sessions, bot: Bot, events: Inbox
) -> None:
    source, _ = await one_operator_source(sessions, limit=5)
    unpublished = (
        select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None))
    )
    async with running_worker(settings, sessions):
        await bot.create("a@example.com", source, headers={"traceparent": TRACEPARENT})
        first = await events.next()
        async with asyncio.timeout(5):  # until its confirm is recorded
            while await seed.scalar(sessions, unpublished):  # noqa: ASYNC110 (bounded poll)
                await asyncio.sleep(0.02)
    async with sessions() as session, session.begin():  # as if the confirm never came
        await session.execute(update(OutboxEvent).values(published_at=None))

    async with running_worker(settings, sessions):  # the relay runs at start
        again = await events.next()

    assert again.message.message_id == first.message.message_id
    assert again.headers == {"traceparent": TRACEPARENT}
    assert await seed.scalar(sessions, unpublished) == 0


# -- OpenTelemetry on ----------------------------------------------------------------------------


async def test_with_opentelemetry_the_worker_spans_batch_transaction_and_publish(
    settings: Settings, sessions: Sessions, bot: Bot, events: Inbox, spans: InMemorySpanExporter
) -> None:
    source, _ = await one_operator_source(sessions, limit=5)
    async with running_worker(settings, sessions):
        await bot.create("a@example.com", source, headers={"traceparent": TRACEPARENT})
        event = await events.next()
        await wait_until(lambda: bool(named(spans, "leadrouter.publish")))

    outgoing = event.headers["traceparent"]
    assert tracing.trace_id_of(outgoing) == TRACE_ID  # the bot's trace ...
    assert outgoing != TRACEPARENT  # ... under a parent of the worker's own
    [command] = named(spans, "leadrouter.command create")
    assert f"{command.context.trace_id:032x}" == TRACE_ID
    assert command.parent is not None and f"{command.parent.span_id:016x}" == TRACEPARENT[36:52]
    assert f"{command.context.span_id:016x}" == outgoing[36:52]
    [link] = command.links
    [batch] = [s for s in named(spans, "leadrouter.batch") if s.context == link.context]
    [transaction] = [s for s in named(spans, "leadrouter.transaction") if s.parent == batch.context]
    [publish] = [s for s in named(spans, "leadrouter.publish") if s.parent == batch.context]
    assert transaction.status.is_ok and publish.status.is_ok
