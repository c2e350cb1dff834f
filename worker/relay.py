"""The outbox relay: publishes events whose confirmed publish never got recorded.

That happens when a worker dies between its commit and the broker's confirm, or when the API
committed a change while the broker was down. Re-sent events keep their `event_id`.
"""

from collections.abc import Container
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.repositories.outbox import OutboxCRUD, record_published
from db.session import begin_read_only
from messaging import tracing
from messaging.publisher import EventPublisher
from routing.outcomes import PendingEvent

RELAY_CHUNK = 500
log = structlog.get_logger(__name__)


class OutboxRelay:
    def __init__(
        self, session_factory: async_sessionmaker[AsyncSession], publisher: EventPublisher
    ) -> None:
        self.session_factory = session_factory
        self.publisher = publisher

    async def publish_pending(
        self, older_than: timedelta, skip: Container[str] = frozenset()
    ) -> int:
        """Publish unconfirmed events older than `older_than`, oldest first; returns how many.

        `skip`: events this worker still has in flight (confirmed or not, not yet recorded).
        """
        total, after_id = 0, 0
        while True:
            async with self.session_factory() as session:
                await begin_read_only(session)
                rows = await OutboxCRUD(session).unpublished(older_than, RELAY_CHUNK, after_id)
            after_id = rows[-1].id if rows else after_id
            # No reply copy: a reply is best effort, sent once after its event's first confirm;
            # a relayed event's reply may have gone out already, or been refused (issue 21).
            events = [
                PendingEvent(
                    r.event_id, r.routing_key, r.body, r.correlation_id, None, r.traceparent
                )
                for r in rows
                if r.event_id not in skip
            ]
            if events:
                with tracing.span("leadrouter.publish", attributes={"leadrouter.relay": True}):
                    await self.publisher.publish_events(events)
            await record_published(self.session_factory, (e.event_id for e in events))
            total += len(events)
            if len(rows) < RELAY_CHUNK:
                if total:
                    log.info("outbox relayed", events=total)
                return total
