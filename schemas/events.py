"""Outbound events on `interactions.events`, one model for all three types."""

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, field_serializer


class InteractionStatus(StrEnum):
    ASSIGNED = "assigned"
    WAITING = "waiting"
    CLOSED = "closed"


class EventType(StrEnum):
    ASSIGNED = "interaction.assigned"
    WAITING = "interaction.waiting"
    CLOSED = "interaction.closed"


class InteractionEvent(BaseModel):
    """What downstream services receive; `event_id` is also the AMQP message_id."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    type: EventType
    interaction_id: int
    lead_uuid: str
    email: str
    source_id: int
    operator_id: int | None
    status: InteractionStatus
    message_id: str | None
    created_at: datetime

    @field_serializer("created_at")
    def _utc_z(self, value: datetime) -> str:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
