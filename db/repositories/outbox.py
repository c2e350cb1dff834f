"""OutboxCRUD: the relay's reads and claims of events the broker has not confirmed; storing
events and marking confirmed ones are the routing store's (`db/statements/outbox.py`)."""

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import Select, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import OutboxEvent, OutboxOwner
from db.routing_store.sessions import session_store
from db.types import utcnow


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
        await session_store(session).record_published(ids, utcnow())
