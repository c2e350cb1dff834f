"""The outbox relay: publishes events whose confirmed publish never got recorded.

That happens when a worker dies between its commit and the broker's confirm, loses its
connection, or when the API committed a change while the broker was down. Each event has an
owner, the worker process that publishes it, alive while its lease (`OutboxOwner`) lasts. A
relay re-sends its own worker's events that are no longer in flight, and claims the events
whose owner is gone (lease run out) or that have none (the API's, once a lease old): claimed
in one statement with `SKIP LOCKED`, so exactly one relay re-sends a stuck event, and a live
worker's events, however late their confirms, are never re-sent by another. Re-sent events
keep their `event_id` and body (`sequence` included).
"""

from collections.abc import Awaitable, Callable, Sequence, Set
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.repositories.outbox import OutboxCRUD, RelayedRow, record_published
from db.repositories.outbox_owners import OutboxOwnerCRUD
from db.session import begin_read_only
from db.types import utcnow
from messaging import tracing
from messaging.publisher import EventPublisher
from routing.outcomes import PendingEvent

RELAY_CHUNK = 500
# The lease: long enough that a busy worker renews it many times over before it runs out
# (renewal every fifth of it), short enough that a killed worker's events go out soon.
LEASE_FLOOR_S = 10.0
LEASE_INTERVALS = 5  # relay intervals per lease, when that is longer than the floor
RENEWALS_PER_LEASE = 5
log = structlog.get_logger(__name__)


def lease_for(relay_interval_s: float) -> timedelta:
    """The outbox lease a worker holds, derived from OUTBOX_RELAY_INTERVAL_S."""
    return timedelta(seconds=max(LEASE_FLOOR_S, LEASE_INTERVALS * relay_interval_s))


class OutboxRelay:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        publisher: EventPublisher,
        owner: str,
        lease: timedelta,
    ) -> None:
        self.session_factory = session_factory
        self.publisher = publisher
        self.owner = owner
        self.lease = lease

    async def register(self) -> None:
        """Take the lease before this worker writes any event."""
        now = utcnow()
        async with self.session_factory() as session, session.begin():
            await OutboxOwnerCRUD(session).register(self.owner, now, now + self.lease)

    async def renew(self) -> None:
        now = utcnow()
        async with self.session_factory() as session, session.begin():
            await OutboxOwnerCRUD(session).renew(self.owner, now, now + self.lease)

    async def release(self) -> None:
        """Stopping: what is left unconfirmed is at once the other workers' to re-send."""
        async with self.session_factory() as session, session.begin():
            await OutboxOwnerCRUD(session).release(self.owner)

    async def publish_pending(self, older_than: timedelta, skip: Set[str] = frozenset()) -> int:
        """Claim and publish the stuck events of gone owners, then publish this worker's own
        unconfirmed events older than `older_than`, oldest first; returns how many.

        `skip`: events this worker still has in flight (confirmed or not, not yet recorded).
        """
        claimed = await self._publish_chunks(self._claim, frozenset())
        own = await self._publish_chunks(self._own(older_than), skip)
        if claimed or own:
            log.info("outbox relayed", events=claimed + own, claimed=claimed)
        return claimed + own

    async def _claim(self, _after_id: int) -> Sequence[RelayedRow]:
        now = utcnow()
        async with self.session_factory() as session:
            await begin_read_only(session)
            if not await OutboxCRUD(session).any_stuck(self.owner, now, self.lease):
                return []
        async with self.session_factory() as session, session.begin():
            return await OutboxCRUD(session).claim_stuck(self.owner, now, self.lease, RELAY_CHUNK)

    def _own(self, older_than: timedelta) -> Callable[[int], Awaitable[Sequence[RelayedRow]]]:
        async def read(after_id: int) -> Sequence[RelayedRow]:
            async with self.session_factory() as session:
                await begin_read_only(session)
                crud = OutboxCRUD(session)
                return await crud.unpublished(self.owner, older_than, RELAY_CHUNK, after_id)

        return read

    async def _publish_chunks(
        self,
        chunk: Callable[[int], Awaitable[Sequence[RelayedRow]]],
        skip: Set[str],
    ) -> int:
        total, after_id = 0, 0
        while True:
            # In flight before the read too: an event recorded while the read ran is no
            # longer in flight after it, but the read may still have found it unpublished.
            before = frozenset(skip)
            rows = await chunk(after_id)
            after_id = rows[-1].id if rows else after_id
            skipped = before | skip
            events = [_pending(row) for row in rows if row.event_id not in skipped]
            if events:
                with tracing.span("leadrouter.publish", attributes={"leadrouter.relay": True}):
                    await self.publisher.publish_events(events)
            await record_published(self.session_factory, (e.event_id for e in events))
            total += len(events)
            if len(rows) < RELAY_CHUNK:
                return total


def _pending(row: RelayedRow) -> PendingEvent:
    """No reply copy (`reply_to` None): a reply is best effort, sent once after its event's
    first confirm; a relayed event's reply may have gone out already, or been refused."""
    return PendingEvent(
        row.event_id, row.routing_key, row.body, row.correlation_id, None, row.traceparent
    )
