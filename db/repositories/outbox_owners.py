"""OutboxOwnerCRUD: the worker processes that publish events, each alive while its lease lasts.

A worker renews one row on a timer, so the lease costs one UPDATE per worker and interval
however many events it has in flight; a relay reads the rows to tell a live owner's events
(left alone: their confirms are on the way) from a gone one's (re-sent, by one relay).
"""

from datetime import datetime, timedelta

from sqlalchemy import delete, insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import OutboxOwner

# A row whose lease ended this long ago is deleted when a worker starts: a missing owner and
# an expired one mean the same to a relay, so only the table's size is at stake.
FORGET_AFTER = timedelta(days=1)


class OutboxOwnerCRUD:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def register(self, owner: str, now: datetime, lease_until: datetime) -> None:
        await self.session.execute(
            delete(OutboxOwner).where(OutboxOwner.lease_until < now - FORGET_AFTER)
        )
        await self.session.execute(
            insert(OutboxOwner).values(id=owner, lease_until=lease_until, started_at=now)
        )

    async def renew(self, owner: str, now: datetime, lease_until: datetime) -> None:
        """Extend the lease; a row forgotten meanwhile (a day without renewing) comes back."""
        result = await self.session.execute(
            update(OutboxOwner)
            .where(OutboxOwner.id == owner)
            .values(lease_until=lease_until)
            .execution_options(synchronize_session=False)
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            await self.register(owner, now, lease_until)

    async def release(self, owner: str) -> None:
        """A worker stopping: whatever it leaves unconfirmed is at once anyone's to re-send."""
        await self.session.execute(delete(OutboxOwner).where(OutboxOwner.id == owner))
