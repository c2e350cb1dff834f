"""Building an event once: the outbox row and the message to publish share one body and id."""

from datetime import datetime
from typing import Any

from routing.facts import InteractionFacts
from routing.outcomes import PendingEvent
from schemas.events import EventType, InteractionEvent, InteractionStatus


def build_event(
    event_id: str,
    facts: InteractionFacts,
    event_type: EventType,
    now: datetime,
    correlation_id: str | None,
    reply_to: str | None,
) -> tuple[PendingEvent, dict[str, Any]]:
    event = InteractionEvent(
        event_id=event_id,
        type=event_type,
        interaction_id=facts.id,
        lead_uuid=facts.lead_uuid,
        email=facts.email,
        source_id=facts.source_id,
        operator_id=facts.operator_id,
        status=InteractionStatus(facts.status),
        message_id=facts.message_id,
        created_at=now,
    )
    body = event.model_dump_json()
    pending = PendingEvent(event.event_id, event_type.value, body, correlation_id, reply_to)
    row = {
        "event_id": event.event_id,
        "interaction_id": facts.id,
        "routing_key": event_type.value,
        "body": body,
        "correlation_id": correlation_id,
        "reply_to": reply_to,
        "created_at": now,
    }
    return pending, row
