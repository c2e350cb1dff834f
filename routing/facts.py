"""What the router and a store exchange: facts read back and rows to write, typed.

Everything here is immutable except `OperatorState` (the pool counts loads on it). The two
rows the router writes per new interaction are `NamedTuple`s, not frozen dataclasses: a
frozen dataclass sets each field through `object.__setattr__`, and on the worker's hot path
that made the router's own work per new interaction a fifth slower. Their field names are
the columns they fill, so the stores derive their statements from them.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from schemas.events import InteractionStatus


@dataclass(frozen=True, slots=True)
class InteractionFacts:
    """The columns an event is built from, with the lead's shown contacts joined in."""

    id: int
    lead_uuid: str
    email: str | None
    phone: str | None
    handle: str | None
    source_id: int
    operator_id: int | None
    status: InteractionStatus
    priority: int
    message_id: str | None
    correlation_id: str | None
    reply_to: str | None


@dataclass
class OperatorState:
    """What the routing decision needs of an operator, read under lock; mutable because the
    pool counts a transaction's assignments on it as it goes."""

    id: int
    active: bool
    load_limit: int
    current_load: int

    @property
    def has_capacity(self) -> bool:
        return self.active and self.current_load < self.load_limit


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as the outbox holds it: what a repeated command gets sent again."""

    interaction_id: int
    event_id: str
    routing_key: str
    body: str


class SourceRules(NamedTuple):
    """What routing needs of the sources in play: which exist, which are sticky, the weights
    (source_id, operator_id, weight) of their operators."""

    known: set[int]
    sticky: set[int]
    weights: list[tuple[int, int, int]]


class WaitingCursor(NamedTuple):
    """Where a drain stopped: the last waiting interaction it read, in drain order."""

    priority: int
    id: int


class NewInteraction(NamedTuple):
    """An `interactions` row the router decided on; the store gives it its id."""

    lead_uuid: str
    source_id: int
    operator_id: int | None
    status: InteractionStatus
    is_active: bool
    payload: Any  # a JSON value (`CreateInteraction.payload`)
    message_id: str | None
    correlation_id: str | None
    reply_to: str | None
    created_at: datetime
    assigned_at: datetime | None
    priority: int


class NewLead(NamedTuple):
    """A `leads` row: a person first seen in this batch, with the contacts it is shown by."""

    uuid: str
    email: str | None
    phone: str | None
    handle: str | None
    created_at: datetime


class NewContact(NamedTuple):
    """A `lead_contacts` row: one way to reach a lead, which identifies it."""

    lead_uuid: str
    kind: str
    value: str
    created_at: datetime


class OutboxRow(NamedTuple):
    """An `outbox_events` row: an event stored with the change it reports, to be published."""

    event_id: str
    interaction_id: int
    routing_key: str
    body: str
    correlation_id: str | None
    reply_to: str | None
    created_at: datetime
    traceparent: str | None = None  # the W3C trace the event continues, for a re-send too
