"""Events of a committed change go to the broker at once; if it is away, the outbox keeps them."""

from collections.abc import Sequence

import structlog

from api.broker import BrokerUnavailable
from api.state import ApiState
from db.repositories.outbox import record_published
from messaging import tracing
from routing.outcomes import PendingEvent

log = structlog.get_logger(__name__)


async def publish_committed(state: ApiState, events: Sequence[PendingEvent]) -> None:
    """Publish, then record them published; on any failure leave the rows for the worker's relay."""
    if not events:
        return
    try:
        attributes = {"messaging.batch.message_count": len(events)}
        with tracing.span("leadrouter.publish", kind="producer", attributes=attributes):
            await state.broker.publish_events(events)
    except BrokerUnavailable as exc:
        log.warning("events left for the outbox relay", events=len(events), error=str(exc))
        return
    for event in events:
        state.metrics.events_published.labels(event.routing_key).inc()
    try:
        await record_published(state.sessions, [e.event_id for e in events])
    except Exception as exc:  # published; the relay may send them again with the same ids
        log.warning("could not record events as published", error=repr(exc)[:300])
