"""Outbound events on `interactions.events`: one model for an interaction's events, one for
`lead.merged`."""

from datetime import datetime
from enum import StrEnum
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, field_serializer


class InteractionStatus(StrEnum):
    ASSIGNED = "assigned"
    WAITING = "waiting"
    CLOSED = "closed"
    OFFERED = "offered"  # proposed to an operator who has not accepted yet; counts in its load


# The statuses an operator's `current_load` counts.
HOLDS_A_SLOT = frozenset((InteractionStatus.ASSIGNED, InteractionStatus.OFFERED))


class EventType(StrEnum):
    ASSIGNED = "interaction.assigned"
    WAITING = "interaction.waiting"
    CLOSED = "interaction.closed"
    OVERDUE = "interaction.overdue"
    OFFERED = "interaction.offered"
    OFFER_EXPIRED = "interaction.offer_expired"
    ACCEPTED = "interaction.accepted"
    LEAD_MERGED = "lead.merged"


class AssignReason(StrEnum):
    """Why this operator (on `assigned` and `offered` events)."""

    WEIGHTED = "weighted"  # the weighted draw among candidates
    STICKY = "sticky"  # the lead's previous operator
    DRAIN = "drain"  # a waiting interaction given freed capacity
    MANUAL = "manual"  # the API


class InteractionEvent(BaseModel):
    """What downstream services receive; `event_id` is also the AMQP message_id."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    type: EventType
    interaction_id: int
    lead_uuid: str
    email: str | None
    phone: str | None
    handle: str | None
    source_id: int
    operator_id: int | None
    status: InteractionStatus
    priority: int
    reason: AssignReason | None
    message_id: str | None
    created_at: datetime
    sequence: int = Field(
        ge=1,
        description="1 for the interaction's first event, +1 for each later one; fixed when "
        "the event is made (a re-sent event keeps it). Keep the highest per interaction and "
        "ignore lower ones: events can arrive out of order.",
        examples=[1],
    )

    @field_serializer("created_at")
    def _utc_z(self, value: datetime) -> str:
        return utc_z(value)


class LeadMergedEvent(BaseModel):
    """Leads that turned out to be one person: the oldest survives with every contact and
    interaction of the others."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    type: EventType = EventType.LEAD_MERGED
    lead_uuid: str
    merged_lead_uuids: list[str]
    created_at: datetime
    sequence: int = Field(
        ge=1,
        description="1 for the surviving lead's first `lead.merged`, +1 for each later one; "
        "a re-sent event keeps it.",
        examples=[1],
    )

    @field_serializer("created_at")
    def _utc_z(self, value: datetime) -> str:
        return utc_z(value)


@lru_cache(maxsize=64)
def utc_z(value: datetime) -> str:
    """Remembered: every event of a batch carries the batch's one moment, and strftime is a
    large share of what serialising an event costs (docs/performance.md)."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
