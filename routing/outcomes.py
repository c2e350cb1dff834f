"""What routing a command produced: the result per command and the events to publish."""

from dataclasses import dataclass, field
from enum import StrEnum

from schemas.events import InteractionStatus


@dataclass(frozen=True)
class PendingEvent:
    """An event stored in the outbox and waiting for a confirmed publish."""

    event_id: str
    routing_key: str
    body: str
    correlation_id: str | None
    reply_to: str | None
    traceparent: str | None = None  # of the command that caused it (W3C trace context)
    tracestate: str | None = None  # not stored: the relay re-sends the `traceparent` only


@dataclass(frozen=True)
class Routed:
    """A command that took effect (or had already taken effect: `replayed`)."""

    interaction_id: int
    status: InteractionStatus
    operator_id: int | None
    source_id: int
    event: PendingEvent
    replayed: bool = False


class RefusalClass(StrEnum):
    """Why a message was dead-lettered, as a fixed set: the metric's `reason` label."""

    TOO_LARGE = "too_large"
    NOT_JSON = "not_json"
    INVALID_BODY = "invalid_body"
    CONTENT_TYPE = "content_type"
    INVALID_PROPERTY = "invalid_property"
    UNKNOWN_SOURCE = "unknown_source"
    UNKNOWN_INTERACTION = "unknown_interaction"
    OFFER_NOT_OPEN = "offer_not_open"  # an accept of an offer that expired or is not its
    DELIVERY_LIMIT = "delivery_limit"
    DATABASE_UNAVAILABLE = "database_unavailable"
    INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True)
class Refused:
    """A command that can never take effect; it goes to the dead-letter queue with `reason`
    (one line, see `worker.reasons`) and is counted under `kind`."""

    reason: str
    kind: RefusalClass


@dataclass
class RoutingOutcome:
    results: dict[int, Routed | Refused] = field(default_factory=dict)
    events: list[PendingEvent] = field(default_factory=list)
