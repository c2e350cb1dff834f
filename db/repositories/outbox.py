"""OutboxCRUD: the relay's read of events the broker has not confirmed; marking confirmed ones
is the routing store's `record_published` (`db/statements/outbox.py`)."""

from collections.abc import Iterable, Sequence
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import OutboxEvent
from db.routing_store.sessions import session_store
from db.types import utcnow


class OutboxCRUD:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def unpublished(
        self, older_than: timedelta, limit: int, after_id: int = 0
    ) -> Sequence[OutboxEvent]:
        """Events not confirmed by the broker: a crashed or disconnected publisher's leftovers."""
        cutoff = utcnow() - older_than
        stmt = (
            select(OutboxEvent)
            .where(
                OutboxEvent.published_at.is_(None),
                OutboxEvent.created_at <= cutoff,
                OutboxEvent.id > after_id,
            )
            .order_by(OutboxEvent.id)
            .limit(limit)
        )
        return (await self.session.scalars(stmt)).all()


async def record_published(
    session_factory: async_sessionmaker[AsyncSession], event_ids: Iterable[str]
) -> None:
    """Set `published_at` of confirmed events, in a transaction of their own."""
    ids = list(event_ids)
    if not ids:
        return
    async with session_factory() as session, session.begin():
        await session_store(session).record_published(ids, utcnow())
