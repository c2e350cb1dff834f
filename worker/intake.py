"""A delivery read once: an envelope with what its log line needs, or a refusal.

Everything the worker takes from a message's properties and headers is read here, in one
pass, when the message arrives: the checks of worker/parse.py (UTF-8, undecodable values,
what the database cannot store, content type), `reply_to` (messaging/reply_to.py),
`traceparent`/`tracestate` and whether the delivery is a suspect. The pipeline then parses the
body against `Intake.envelope` and writes the log line from these fields, reading no header
again. Pure: no I/O, and nothing a publisher sends makes it raise.
"""

from dataclasses import dataclass
from typing import Any, NamedTuple

from aio_pika.abc import AbstractIncomingMessage

from messaging import tracing
from messaging.lenient_strings import printable, short_string_properties
from messaging.reply_to import ReplyToRefusal, reply_to_refusal
from routing.commands import Envelope
from routing.outcomes import RefusalClass, Refused
from worker.parse import envelope_refusal, is_suspect
from worker.reasons import error_summary, one_line


class Intake(NamedTuple):
    """A delivery whose envelope passed: the body is still to be parsed.

    `reply_to_ignored` says why the publisher's `reply_to` was dropped from the envelope
    (None: kept, or none given); `traceparent_ignored` that a `traceparent` header came but was
    not W3C trace context. Both are logged and counted by the pipeline, never refused.
    A tuple, not a frozen dataclass: one is made per message, and a tuple is made far faster."""

    envelope: Envelope
    suspect: bool  # redelivered `delivery_limit` times or more: routed alone
    reply_to_ignored: ReplyToRefusal | None = None
    traceparent_ignored: bool = False

    @property
    def message_id(self) -> str | None:
        """Printable as it is: an envelope that passed holds only valid UTF-8."""
        return self.envelope.message_id

    @property
    def trace_id(self) -> str | None:
        return tracing.trace_id_of(self.envelope.traceparent)


@dataclass(frozen=True)
class RefusedDelivery(Refused):
    """A delivery refused on its envelope alone, with what its log line needs."""

    message_id: str | None = None  # printable: undecodable bytes shown as `\\xff`
    traceparent: str | None = None  # valid W3C, or None
    suspect: bool = False

    @property
    def trace_id(self) -> str | None:
        return tracing.trace_id_of(self.traceparent)


def read_delivery(
    message: AbstractIncomingMessage, delivery_limit: int
) -> Intake | RefusedDelivery:
    """The one pass over a delivery's properties and headers (see the module's docstring)."""
    try:
        return _read(message, delivery_limit)
    except Exception as exc:  # a property of an unexpected type: this message's refusal only
        reason = one_line(f"could not read message: {error_summary(exc)}")
        message_id = message.message_id
        return RefusedDelivery(
            reason,
            RefusalClass.INVALID_BODY,
            printable(message_id) if isinstance(message_id, str) else None,
        )


def _read(message: AbstractIncomingMessage, delivery_limit: int) -> Intake | RefusedDelivery:
    headers: dict[str, Any] = message.headers or {}
    suspect = is_suspect(headers, bool(message.redelivered), delivery_limit)
    raw_traceparent = headers.get(tracing.TRACEPARENT)
    traceparent = None if raw_traceparent is None else tracing.parse_traceparent(raw_traceparent)
    refusal = envelope_refusal(short_string_properties(message), headers, message.timestamp)
    message_id = message.message_id
    if refusal is not None:
        shown = printable(message_id) or None if message_id is not None else None
        return RefusedDelivery(refusal.reason, refusal.kind, shown, traceparent, suspect)
    reply_to, ignored = message.reply_to, None
    if reply_to is not None and (ignored := reply_to_refusal(reply_to)) is not None:
        reply_to = None
    tracestate = None
    if traceparent is not None and (state := headers.get(tracing.TRACESTATE)) is not None:
        tracestate = tracing.parse_tracestate(state)
    envelope = Envelope(message_id, message.correlation_id, reply_to, traceparent, tracestate)
    bad_traceparent = raw_traceparent is not None and traceparent is None
    return Intake(envelope, suspect, ignored, bad_traceparent)
