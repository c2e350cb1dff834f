"""Building an event once: the outbox row and the message to publish share one body and id."""

from datetime import datetime

from routing.facts import InteractionFacts, OutboxRow
from routing.outcomes import PendingEvent
from schemas.events import EventType, InteractionEvent


def build_event(
    event_id: str,
    facts: InteractionFacts,
    event_type: EventType,
    now: datetime,
    correlation_id: str | None,
    reply_to: str | None,
) -> tuple[PendingEvent, OutboxRow]:
    event = InteractionEvent(
        event_id=event_id,
        type=event_type,
        interaction_id=facts.id,
        lead_uuid=facts.lead_uuid,
        email=facts.email,
        source_id=facts.source_id,
        operator_id=facts.operator_id,
        status=facts.status,
        message_id=facts.message_id,
        created_at=now,
    )
    body = event.model_dump_json()
    routing_key = event_type.value
    pending = PendingEvent(event_id, routing_key, body, correlation_id, reply_to)
    row = OutboxRow(event_id, facts.id, routing_key, body, correlation_id, reply_to, now)
    return pending, row
