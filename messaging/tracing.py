"""One trace from a bot to the operator's desk: W3C trace context, and OpenTelemetry spans.

A command's AMQP header `traceparent` (and `tracestate`) travels into every event the command
causes, stored in the outbox row too, so the relay re-sends it (the outbox keeps only the
`traceparent`). Invalid values are ignored, never a reason to refuse the message.

With the OpenTelemetry SDK installed (`pip install 'leadrouter[otel]'`) and an exporter
configured (`OTEL_TRACES_EXPORTER`, default `otlp`; an exporter package provides it, the SDK
itself only `console`), `configure` turns spans on: the worker's batch, its transaction, its
publish and one span per traced command (the parent of that command's events: same trace-id,
new parent-id), and the API's changes, their transaction and publish and its ingress. Without
the SDK (or with tracing off) every helper here is a no-op: no import of OpenTelemetry, no
allocation, and an inbound `traceparent` is passed on unchanged.
"""

import contextlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from importlib import metadata
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import structlog

from routing.commands import AcceptRequest, CloseRequest, CreateRequest

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, SpanContext, Tracer, TracerProvider

log = structlog.get_logger(__name__)

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
TRACESTATE_MAX_CHARS = 512  # W3C: what a vendor must propagate at least
TRACER_NAME = "leadrouter"
# version-trace_id-parent_id-flags, lowercase hex (W3C Trace Context, level 1).
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE_ID, _ZERO_PARENT_ID = "0" * 32, "0" * 16
SpanKindName = Literal["internal", "server", "client", "producer", "consumer"]
Request = TypeVar("Request", bound=CreateRequest | CloseRequest | AcceptRequest)


# -- W3C trace context ---------------------------------------------------------------------------


def parse_traceparent(value: object) -> str | None:
    """The header as a valid W3C `traceparent`, or None (missing, malformed, all-zero ids).

    A version 00 value is returned unchanged. A later version is read by the fields version
    00 defines (as the spec asks) and returned as their version 00 form.
    """
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    if not isinstance(value, str):
        return None
    match = _TRACEPARENT.match(value)
    if match is None:
        return None
    version, trace_id, parent_id, flags = match.groups()
    if trace_id == _ZERO_TRACE_ID or parent_id == _ZERO_PARENT_ID or version == "ff":
        return None
    if version == "00":
        return value if len(value) == 55 else None
    if len(value) > 55 and value[55] != "-":
        return None
    return f"00-{trace_id}-{parent_id}-{flags}"


def parse_tracestate(value: object) -> str | None:
    """`tracestate` carried as it came when it is printable ASCII of a sane length, else None
    (vendor entries are not ours to rewrite; a bad one never costs the `traceparent`)."""
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    if not isinstance(value, str) or not value or len(value) > TRACESTATE_MAX_CHARS:
        return None
    return value if value.isascii() and value.isprintable() else None


def trace_id_of(traceparent: str | None) -> str | None:
    """The 32-hex trace id of a valid `traceparent`: what log lines carry as `trace_id`."""
    return traceparent[3:35] if traceparent else None


def trace_headers(traceparent: str | None, tracestate: str | None) -> dict[str, Any] | None:
    """AMQP headers for an outgoing message of this trace (None: no headers at all)."""
    if traceparent is None:
        return None
    if tracestate is None:
        return {TRACEPARENT: traceparent}
    return {TRACEPARENT: traceparent, TRACESTATE: tracestate}


# -- OpenTelemetry, only when installed and configured ---------------------------------------

_tracer: "Tracer | None" = None
_NO_SPAN: AbstractContextManager[None] = contextlib.nullcontext()


def active() -> bool:
    """True while spans are being made (`configure` or `enable` turned them on)."""
    return _tracer is not None


def configure(service_name: str) -> bool:
    """Turn spans on for this process if the SDK is installed and an exporter is configured.

    A tracer provider that is set up already (`opentelemetry-instrument`, an embedding app)
    is used as it is. Otherwise the standard variables apply: `OTEL_SDK_DISABLED=true` or
    `OTEL_TRACES_EXPORTER=none` keep tracing off; `OTEL_TRACES_EXPORTER` (default `otlp`)
    names exporters by their entry point; `OTEL_SERVICE_NAME` wins over `service_name`.
    """
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        return False
    current = trace.get_tracer_provider()
    if isinstance(current, SdkTracerProvider):
        enable(current)
        return True
    exporters = []
    asked = os.environ.get("OTEL_TRACES_EXPORTER")
    for name in (asked or "otlp").split(","):
        name = name.strip()
        if not name or name == "none":
            continue
        found = metadata.entry_points(group="opentelemetry_traces_exporter", name=name)
        if not found:  # the default `otlp` needs its own package: quietly off without it
            (log.warning if asked else log.debug)(
                "tracing exporter not installed; ignored", exporter=name
            )
            continue
        try:
            exporters.append(next(iter(found)).load()())
        except Exception as exc:  # a broken exporter costs the spans, never the process
            log.warning("tracing exporter failed to load", exporter=name, error=repr(exc)[:300])
    if not exporters:
        return False
    named = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": service_name}
    provider = SdkTracerProvider(resource=Resource.create(named))
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    enable(provider)
    log.info("tracing on", exporters=[type(e).__name__ for e in exporters])
    return True


def enable(provider: "TracerProvider | None") -> None:
    """Make spans with this provider from now on; None turns them off (tests use both)."""
    global _tracer
    _tracer = None if provider is None else provider.get_tracer(TRACER_NAME)


def span(
    name: str,
    *,
    traceparent: str | None = None,
    tracestate: str | None = None,
    parent: "Span | None" = None,
    kind: SpanKindName = "internal",
    attributes: Mapping[str, str | int | bool] | None = None,
) -> AbstractContextManager["Span | None"]:
    """A current span for the block (the child of `traceparent`, else of `parent`, else of
    the current span), or a shared no-op context yielding None while tracing is off."""
    started = _start(name, kind, attributes, traceparent, tracestate, parent)
    if started is None:
        return _NO_SPAN
    from opentelemetry.trace import use_span

    return use_span(started, end_on_exit=True)  # what the tracer's start_as_current_span does


def start_span(
    name: str,
    *,
    parent: "Span | None" = None,
    kind: SpanKindName = "internal",
    attributes: Mapping[str, str | int | bool] | None = None,
) -> "Span | None":
    """A span that is not made current, ended by `end_span` (for work that ends in a
    callback); None while tracing is off."""
    return _start(name, kind, attributes, None, None, parent)


def _start(
    name: str,
    kind: SpanKindName,
    attributes: Mapping[str, str | int | bool] | None,
    traceparent: str | None,
    tracestate: str | None,
    parent: "Span | None",
) -> "Span | None":
    """Where both kinds of span start; None while tracing is off (and nothing is imported)."""
    if _tracer is None:
        return None
    context = _parent_context(traceparent, tracestate, parent)
    return _tracer.start_span(name, context=context, kind=_kind(kind), attributes=attributes)


def end_span(span: "Span | None", error: BaseException | None = None) -> None:
    if span is None:
        return
    if error is not None:
        from opentelemetry.trace import Status, StatusCode

        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, repr(error)[:200]))
    span.end()


def outgoing_traceparent(traceparent: str | None, current: "Span | None") -> str | None:
    """What a message sent under `current` carries: the span's own context when it continues
    the inbound trace (OpenTelemetry on), else the inbound `traceparent` unchanged."""
    if current is None:
        return traceparent
    context = current.get_span_context()
    if not context.is_valid:
        return traceparent
    return format_traceparent(context)


def format_traceparent(context: "SpanContext") -> str:
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


@contextlib.contextmanager
def command_spans(requests: Sequence[Request]) -> Iterator[list[Request]]:
    """OpenTelemetry on: one span per command that came with a `traceparent`, its child, for
    the block; the commands come back with that span's `traceparent`, so their events (and
    their outbox rows) continue the bot's trace under a span that exists. Commands without
    one are left as they are. Call only while `active()`."""
    tracer = _tracer
    assert tracer is not None
    from opentelemetry import trace

    batch = trace.get_current_span().get_span_context()
    links = [trace.Link(batch)] if batch.is_valid else None
    continued: list[Request] = []
    spans: list[Span] = []
    try:
        for request in requests:
            envelope = request.envelope
            if envelope.traceparent is None:
                continued.append(request)
                continue
            command = "create" if isinstance(request, CreateRequest) else "close"
            attributes: dict[str, str] = {"messaging.operation.type": "process"}
            if envelope.message_id:
                attributes["messaging.message.id"] = envelope.message_id
            one = tracer.start_span(
                f"leadrouter.command {command}",
                context=_parent_context(envelope.traceparent, envelope.tracestate, None),
                kind=trace.SpanKind.CONSUMER,
                links=links,
                attributes=attributes,
            )
            spans.append(one)
            traceparent = format_traceparent(one.get_span_context())
            continued.append(replace(request, envelope=replace(envelope, traceparent=traceparent)))
        yield continued
    finally:
        for one in spans:
            one.end()


def _parent_context(
    traceparent: str | None, tracestate: str | None, parent: "Span | None"
) -> "Context | None":
    from opentelemetry import trace

    if traceparent is not None:
        remote = trace.SpanContext(
            int(traceparent[3:35], 16),
            int(traceparent[36:52], 16),
            is_remote=True,
            trace_flags=trace.TraceFlags(int(traceparent[53:55], 16)),
            trace_state=trace.TraceState.from_header([tracestate]) if tracestate else None,
        )
        return trace.set_span_in_context(trace.NonRecordingSpan(remote))
    if parent is not None:
        return trace.set_span_in_context(parent)
    return None


def _kind(name: SpanKindName) -> Any:
    from opentelemetry.trace import SpanKind

    return SpanKind[name.upper()]
