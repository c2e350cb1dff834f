"""OutboxCRUD: events stored with the change they report, marked once the broker confirmed."""

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple, cast

from sqlalchemy import Select, Table, and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import OutboxEvent, OutboxOwner
from db.types import utcnow
from routing.rows import OutboxRow
from schemas.events import EventType


class RelayedRow(NamedTuple):
    """What the relay reads of an outbox row to publish it again."""

    id: int
    event_id: str
    routing_key: str
    body: str
    correlation_id: str | None
    reply_to: str | None
    traceparent: str | None


RELAYED_COLUMNS = tuple(getattr(OutboxEvent, name) for name in RelayedRow._fields)


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
        self, owner: str, older_than: timedelta, limit: int, after_id: int = 0
    ) -> Sequence[RelayedRow]:
        """`owner`'s events not confirmed by the broker (a lost connection's leftovers, or
        claimed from a gone owner), oldest first."""
        cutoff = utcnow() - older_than
        stmt = (
            select(*RELAYED_COLUMNS)
            .where(
                OutboxEvent.published_at.is_(None),
                OutboxEvent.owner == owner,
                OutboxEvent.created_at <= cutoff,
                OutboxEvent.id > after_id,
            )
            .order_by(OutboxEvent.id)
            .limit(limit)
        )
        return [RelayedRow(*row) for row in await self.session.execute(stmt)]

    async def claim_stuck(
        self, owner: str, now: datetime, lease: timedelta, limit: int
    ) -> list[RelayedRow]:
        """Make `owner` the owner of up to `limit` unconfirmed events nobody answers for: their
        owner's lease ran out (or its row is gone), or they have none (the API's) and are older
        than a lease. One statement, its rows locked `SKIP LOCKED` on PostgreSQL (SQLite has
        one writer), so two relays never claim one event; oldest first."""
        stuck = _stuck(owner, now, lease).limit(limit).with_for_update(skip_locked=True)
        stmt = (
            update(OutboxEvent)
            .where(OutboxEvent.id.in_(stuck.scalar_subquery()))
            .values(owner=owner)
            .returning(*RELAYED_COLUMNS)
            .execution_options(synchronize_session=False)
        )
        rows = [RelayedRow(*row) for row in await self.session.execute(stmt)]
        return sorted(rows, key=lambda row: row.id)

    async def any_stuck(self, owner: str, now: datetime, lease: timedelta) -> bool:
        """Whether `claim_stuck` would find anything: asked first in a read-only transaction,
        so that on SQLite an idle relay does not queue for the write lock every interval."""
        found = await self.session.scalar(_stuck(owner, now, lease).limit(1))
        return found is not None


def _stuck(owner: str, now: datetime, lease: timedelta) -> Select[int]:
    """Unconfirmed events nobody but `owner` could answer for, oldest first."""
    live = select(OutboxOwner.id).where(OutboxOwner.lease_until > now)
    return (
        select(OutboxEvent.id)
        .where(
            OutboxEvent.published_at.is_(None),
            or_(
                and_(OutboxEvent.owner.is_(None), OutboxEvent.created_at <= now - lease),
                and_(OutboxEvent.owner != owner, OutboxEvent.owner.not_in(live)),
            ),
        )
        .order_by(OutboxEvent.id)
    )


async def record_published(
    session_factory: async_sessionmaker[AsyncSession], event_ids: Iterable[str]
) -> None:
    """Set `published_at` of confirmed events, in a transaction of their own."""
    ids = list(event_ids)
    if not ids:
        return
    async with session_factory() as session, session.begin():
        await OutboxCRUD(session).record_published(ids, utcnow())
