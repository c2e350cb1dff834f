"""OutboxCRUD: events stored with the change they report, marked once the broker confirmed."""

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import OutboxEvent
from db.types import utcnow
from routing.rows import OutboxRow
from schemas.events import EventType


class OutboxCRUD:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_many(self, rows: Sequence[OutboxRow]) -> None:
        if rows:
            params = [row._asdict() for row in rows]  # its fields are the table's columns
            await self.session.execute(insert(cast(Table, OutboxEvent.__table__)), params)

    async def record_published(self, event_ids: Iterable[str], now: datetime) -> None:
        wanted = list(set(event_ids))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            await self.session.execute(
                update(OutboxEvent)
                .where(OutboxEvent.event_id.in_(chunk), OutboxEvent.published_at.is_(None))
                .values(published_at=now)
                .execution_options(synchronize_session=False)
            )

    async def first_events(self, interaction_ids: Iterable[int]) -> dict[int, OutboxEvent]:
        """The event each interaction was created with: what a repeated message_id gets again."""
        return await self._events_where(interaction_ids, routing_key=None)

    async def events_of_type(
        self, interaction_ids: Iterable[int], event_type: EventType
    ) -> dict[int, OutboxEvent]:
        return await self._events_where(interaction_ids, routing_key=event_type.value)

    async def _events_where(
        self, interaction_ids: Iterable[int], routing_key: str | None
    ) -> dict[int, OutboxEvent]:
        wanted = set(interaction_ids)
        if not wanted:
            return {}
        first = select(func.min(OutboxEvent.id)).where(OutboxEvent.interaction_id.in_(wanted))
        if routing_key is not None:
            first = first.where(OutboxEvent.routing_key == routing_key)
        stmt = select(OutboxEvent).where(
            OutboxEvent.id.in_(first.group_by(OutboxEvent.interaction_id))
        )
        return {event.interaction_id: event for event in await self.session.scalars(stmt)}

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
        await OutboxCRUD(session).record_published(ids, utcnow())
