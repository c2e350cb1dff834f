"""W3C trace context: parsing, the router carrying it into events, and OpenTelemetry on or off.

`messaging.tracing` is the one module that knows OpenTelemetry; these tests run it both ways:
off (the default: no spans, headers passed on unchanged) and on with an in-memory exporter.
"""

from dataclasses import replace
from random import Random
from typing import TypeVar

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from messaging import tracing
from messaging.publisher import event_properties
from routing.commands import CloseRequest, CreateRequest
from routing.router import Router
from tests.support.router_cases import MemoryWorld, close, create, route, routed

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
OTHER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"


# -- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        TRACEPARENT,
        OTHER,
        TRACEPARENT.encode(),  # an AMQP long string that pamqp left as bytes
    ],
)
def test_a_valid_traceparent_is_kept_as_it_came(value: str | bytes) -> None:
    expected = value.decode() if isinstance(value, bytes) else value
    assert tracing.parse_traceparent(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        42,
        ["00", TRACE_ID],
        "not a traceparent",
        TRACEPARENT.upper(),  # W3C: lowercase hex only
        TRACEPARENT[:-1],  # too short
        TRACEPARENT + "0",  # version 00 is exactly 55 characters
        TRACEPARENT + "-extra",  # ... with nothing after it
        f"00-{'0' * 32}-{PARENT_ID}-01",  # all-zero trace id
        f"00-{TRACE_ID}-{'0' * 16}-01",  # all-zero parent id
        f"ff-{TRACE_ID}-{PARENT_ID}-01",  # version ff is invalid
        f"00_{TRACE_ID}_{PARENT_ID}_01",
        f"00-{TRACE_ID[:-1]}g-{PARENT_ID}-01",
        f" {TRACEPARENT}",
        f"cc-{TRACE_ID}-{PARENT_ID}-01x",  # a later version must continue with "-"
        b"\xff" * 55,
    ],
)
def test_an_invalid_traceparent_is_none(value: object) -> None:
    assert tracing.parse_traceparent(value) is None


def test_a_later_version_is_read_by_the_fields_of_version_00() -> None:
    later = f"cc-{TRACE_ID}-{PARENT_ID}-01"
    assert tracing.parse_traceparent(later) == TRACEPARENT
    assert tracing.parse_traceparent(later + "-what-comes-next") == TRACEPARENT


def test_tracestate_is_carried_when_sane() -> None:
    assert tracing.parse_tracestate("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE") == (
        "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
    )
    assert tracing.parse_tracestate(b"vendor=1") == "vendor=1"
    for bad in (None, "", 7, "x=" + "a" * 600, "bad=\n", "ünicode=1", b"\xff=1"):
        assert tracing.parse_tracestate(bad) is None, bad


def test_trace_id_and_headers() -> None:
    assert tracing.trace_id_of(TRACEPARENT) == TRACE_ID
    assert tracing.trace_id_of(None) is None
    assert tracing.trace_headers(None, "x=1") is None
    assert tracing.trace_headers(TRACEPARENT, None) == {"traceparent": TRACEPARENT}
    assert tracing.trace_headers(TRACEPARENT, "x=1") == {
        "traceparent": TRACEPARENT,
        "tracestate": "x=1",
    }


def test_event_properties_carry_the_trace_headers_only_when_given() -> None:
    assert event_properties("e-1", None, "interaction.assigned").headers is None
    headers = tracing.trace_headers(TRACEPARENT, None)
    assert event_properties("e-1", None, "k", headers).headers == {"traceparent": TRACEPARENT}


# -- the router carries the command's trace into its events --------------------------------------


R = TypeVar("R", CreateRequest, CloseRequest)


def traced(request: R, traceparent: str, state: str | None = None) -> R:
    return replace(
        request, envelope=replace(request.envelope, traceparent=traceparent, tracestate=state)
    )


async def test_the_router_puts_a_commands_trace_on_its_events_and_outbox_rows() -> None:
    world = MemoryWorld()
    source = await world.add_source("s")
    operator = await world.add_operator("o", 1)
    await world.set_weights(source, {operator: 10})
    first = traced(create(0, "a@example.com", source), TRACEPARENT, "x=1")
    second = create(1, "b@example.com", source)  # untraced: waits

    outcome = await route(world, [first, second])

    assigned, waiting = routed(outcome, 0).event, routed(outcome, 1).event
    assert (assigned.traceparent, assigned.tracestate) == (TRACEPARENT, "x=1")
    assert (waiting.traceparent, waiting.tracestate) == (None, None)
    stored = {s.row.event_id: s.row.traceparent for s in world.store.outbox}
    assert stored == {assigned.event_id: TRACEPARENT, waiting.event_id: None}

    # The close's trace goes on the close and on the drain it caused.
    closing = traced(close(0, routed(outcome, 0).interaction_id), OTHER)
    closed = await route(world, closes=[closing])

    assert [(e.routing_key, e.traceparent) for e in closed.events] == [
        ("interaction.closed", OTHER),
        ("interaction.assigned", OTHER),
    ]
    assert world.store.outbox[-1].row.traceparent == OTHER  # the drained event's row


async def test_untraced_closes_api_drains_and_replays() -> None:
    world = MemoryWorld()
    source = await world.add_source("s")
    operator = await world.add_operator("o", 1)
    await world.set_weights(source, {operator: 10})
    first = traced(create(0, "a@example.com", source, "m-1"), TRACEPARENT)
    outcome = await route(
        world, [first, create(1, "b@example.com", source), create(2, "c@example.com", source)]
    )

    # A repeated message_id: the stored event again, under the repeat's trace.
    replayed = await route(world, [traced(create(0, "a@example.com", source, "m-1"), OTHER)])
    assert routed(replayed, 0).replayed and routed(replayed, 0).event.traceparent == OTHER

    # A close without a trace: neither it nor its drain has one.
    closed = await route(world, closes=[close(0, routed(outcome, 0).interaction_id)])
    assert [e.routing_key for e in closed.events] == ["interaction.closed", "interaction.assigned"]
    assert [e.traceparent for e in closed.events] == [None, None]

    # An API change (new capacity) drains with no inbound trace.
    helper = await world.add_operator("helper", 1)
    await world.set_weights(source, {operator: 10, helper: 10})
    drained = await world.run(lambda store: Router(store, Random(1)).drain([helper]))
    assert [(e.routing_key, e.traceparent) for e in drained.events] == [
        ("interaction.assigned", None)
    ]


# -- OpenTelemetry off: nothing happens ----------------------------------------------------------


def test_off_every_helper_is_a_no_op() -> None:
    tracing.enable(None)
    assert not tracing.active()
    first = tracing.span("leadrouter.batch", traceparent=TRACEPARENT)
    assert first is tracing.span("leadrouter.publish")  # one shared object: nothing allocated
    with first as span:
        assert span is None
    assert tracing.start_span("x") is None
    tracing.end_span(None, RuntimeError("ignored"))
    assert tracing.outgoing_traceparent(TRACEPARENT, None) == TRACEPARENT


def test_configure_stays_off_without_an_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)  # default otlp: not installed
    try:
        assert tracing.configure("leadrouter-test") is False
        assert not tracing.active()
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
        assert tracing.configure("leadrouter-test") is False
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
        monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
        assert tracing.configure("leadrouter-test") is False
        assert not tracing.active()
    finally:
        tracing.enable(None)


# -- OpenTelemetry on ----------------------------------------------------------------------------


def test_on_a_span_continues_the_inbound_trace_with_a_new_parent_id(
    spans: InMemorySpanExporter,
) -> None:
    assert tracing.active()
    with tracing.span("leadrouter.ingress", traceparent=TRACEPARENT, tracestate="x=1") as span:
        outgoing = tracing.outgoing_traceparent(TRACEPARENT, span)
    assert outgoing is not None and outgoing != TRACEPARENT
    assert tracing.parse_traceparent(outgoing) == outgoing
    assert tracing.trace_id_of(outgoing) == TRACE_ID
    [finished] = spans.get_finished_spans()
    assert finished.name == "leadrouter.ingress"
    assert finished.parent is not None and finished.parent.span_id == int(PARENT_ID, 16)
    assert f"{finished.context.span_id:016x}" == outgoing[36:52]
    assert finished.context.trace_state.get("x") == "1"


def test_on_each_traced_command_gets_a_span_that_its_events_name_as_parent(
    spans: InMemorySpanExporter,
) -> None:
    sampled = traced(create(0, "a@example.com", 1, "m-0"), TRACEPARENT, "x=1")
    unsampled = traced(create(1, "b@example.com", 1), OTHER)
    untraced = create(2, "c@example.com", 1)

    with (
        tracing.span("leadrouter.batch") as batch,
        tracing.command_spans([sampled, unsampled, untraced]) as continued,
    ):
        assert continued[2] is untraced
        outgoing = [c.envelope.traceparent for c in continued[:2]]
    assert batch is not None
    assert [tracing.trace_id_of(o) for o in outgoing] == [TRACE_ID, OTHER[3:35]]
    assert continued[0].envelope.tracestate == "x=1"
    assert [o[-2:] for o in outgoing if o] == ["01", "00"]  # the sampled flag travels on
    finished = {s.name: s for s in spans.get_finished_spans()}
    assert set(finished) == {"leadrouter.batch", "leadrouter.command create"}  # 00: not sampled
    command = finished["leadrouter.command create"]
    assert command.parent is not None and command.parent.span_id == int(PARENT_ID, 16)
    assert f"{command.context.span_id:016x}" == outgoing[0][36:52]  # type: ignore[index]
    assert [link.context.span_id for link in command.links] == [batch.get_span_context().span_id]
    assert command.attributes is not None and command.attributes["messaging.message.id"] == "m-0"


def test_on_end_span_records_an_error(spans: InMemorySpanExporter) -> None:
    span = tracing.start_span("leadrouter.publish", kind="producer")
    tracing.end_span(span, RuntimeError("nack"))
    [finished] = spans.get_finished_spans()
    assert not finished.status.is_ok
    assert finished.events[0].name == "exception"
