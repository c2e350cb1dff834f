"""The API's part of a trace: the HTTP ingress hands the caller's `traceparent` to the worker;
with OpenTelemetry on, changes and publishes get spans under the caller's trace."""

import asyncio
from collections.abc import Callable

from httpx import AsyncClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from messaging import tracing
from tests.api.helpers import add_operator, add_source, ok, put_weights
from tests.support.amqp import Inbox
from tests.support.spans import named
from worker.app import Worker

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


async def wait_until(check: Callable[[], bool], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 (bounded poll)
            await asyncio.sleep(0.02)


async def served_source(client: AsyncClient, load_limit: int = 5) -> int:
    ann = await add_operator(client, load_limit=load_limit)
    source = await add_source(client)
    ok(await put_weights(client, source, {ann: 10}))
    return source


async def test_the_http_ingress_passes_the_callers_trace_to_the_event(
    client: AsyncClient, worker: Worker, events: Inbox
) -> None:
    source = await served_source(client)
    body = {"email": "b@example.com", "source_id": source}

    ok(await client.post("/interactions", json=body, headers={"traceparent": TRACEPARENT}), 202)
    traced = await events.next()
    ok(await client.post("/interactions", json=body, headers={"traceparent": "nonsense"}), 202)
    untraced = await events.next()

    assert traced.headers == {"traceparent": TRACEPARENT}
    assert "traceparent" not in untraced.headers


async def test_with_opentelemetry_the_api_spans_its_ingress_changes_and_publishes(
    client: AsyncClient, worker: Worker, events: Inbox, spans: InMemorySpanExporter
) -> None:
    source = await served_source(client, load_limit=1)
    body = {"email": "b@example.com", "source_id": source}
    ok(await client.post("/interactions", json=body, headers={"traceparent": TRACEPARENT}), 202)
    assigned = await events.next()

    [ingress] = named(spans, "leadrouter.ingress")
    assert ingress.parent is not None and f"{ingress.parent.span_id:016x}" == TRACEPARENT[36:52]
    await wait_until(lambda: bool(named(spans, "leadrouter.command create")))
    [command] = named(spans, "leadrouter.command create")
    assert command.parent is not None and command.parent.span_id == ingress.context.span_id
    assert tracing.trace_id_of(assigned.headers["traceparent"]) == TRACE_ID

    interaction_id = assigned.body["interaction_id"]
    close = await client.post(
        f"/interactions/{interaction_id}/close", headers={"traceparent": TRACEPARENT}
    )
    ok(close)
    await events.next()

    [change] = [  # set-up changes (weights) come without a traceparent: traces of their own
        s for s in named(spans, "leadrouter.api.change") if f"{s.context.trace_id:032x}" == TRACE_ID
    ]
    assert [s.name for s in spans.get_finished_spans() if s.parent == change.context] == [
        "leadrouter.transaction",
        "leadrouter.publish",
    ]
