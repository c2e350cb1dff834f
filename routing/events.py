"""Building an event once: the outbox row and the message to publish share one body and id."""

from datetime import datetime

from routing.facts import InteractionFacts
from routing.identity import LeadMerge
from routing.outcomes import PendingEvent
from routing.rows import OutboxRow
from schemas.events import AssignReason, EventType, InteractionEvent, LeadMergedEvent


def build_event(
    event_id: str,
    facts: InteractionFacts,
    event_type: EventType,
    now: datetime,
    correlation_id: str | None,
    reply_to: str | None,
    reason: AssignReason | None = None,
    traceparent: str | None = None,
    tracestate: str | None = None,
    *,
    sequence: int,
    owner: str | None = None,
) -> tuple[PendingEvent, OutboxRow]:
    """The body is stored whole, `sequence` in it: a re-sent event carries its number."""
    event = InteractionEvent(
        event_id=event_id,
        type=event_type,
        interaction_id=facts.id,
        lead_uuid=facts.lead_uuid,
        email=facts.email,
        phone=facts.phone,
        handle=facts.handle,
        source_id=facts.source_id,
        operator_id=facts.operator_id,
        status=facts.status,
        priority=facts.priority,
        reason=reason,
        message_id=facts.message_id,
        created_at=now,
        sequence=sequence,
    )
    body = event.model_dump_json()
    routing_key = event_type.value
    pending = PendingEvent(
        event_id, routing_key, body, correlation_id, reply_to, traceparent, tracestate
    )
    row = OutboxRow(
        event_id, facts.id, routing_key, body, correlation_id, reply_to, now, traceparent, owner
    )
    return pending, row


def build_merged_event(
    event_id: str,
    merge: LeadMerge,
    interaction_id: int,
    now: datetime,
    correlation_id: str | None,
    traceparent: str | None = None,
    tracestate: str | None = None,
    *,
    sequence: int,
    owner: str | None = None,
) -> tuple[PendingEvent, OutboxRow]:
    """`lead.merged`; its outbox row hangs on the interaction whose command merged the leads
    (the relay finds it there), and no reply copy: the command's reply is its own event.
    `sequence` counts the surviving lead's `lead.merged` events."""
    event = LeadMergedEvent(
        event_id=event_id,
        lead_uuid=merge.survivor,
        merged_lead_uuids=list(merge.merged),
        created_at=now,
        sequence=sequence,
    )
    body = event.model_dump_json()
    routing_key = EventType.LEAD_MERGED.value
    pending = PendingEvent(
        event_id, routing_key, body, correlation_id, None, traceparent, tracestate
    )
    row = OutboxRow(
        event_id, interaction_id, routing_key, body, correlation_id, None, now, traceparent, owner
    )
    return pending, row
