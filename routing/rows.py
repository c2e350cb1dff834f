"""Rows the router decided on, for a store to write: one `NamedTuple` per table row.

`NamedTuple`s, not frozen dataclasses: a frozen dataclass sets each field through
`object.__setattr__`, which on the worker's hot path made the router's own work per new
interaction measurably slower (docs/performance.md). Their field names are the columns they
fill, so the stores derive their statements from them.
"""

from datetime import datetime
from typing import Any, NamedTuple

from schemas.events import InteractionStatus


class Offer(NamedTuple):
    """An interaction proposed to an operator until `expires_at`."""

    operator_id: int
    expires_at: datetime


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
    offer_expires_at: datetime | None  # set when it is offered, not assigned


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
    owner: str | None = None  # the worker process that publishes it (None: the API)
