"""LeadCRUD: find-or-create by normalised e-mail, one at a time or a whole batch at once."""

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Lead
from db.repositories.dialect_insert import insert_ignoring_conflicts
from db.types import utcnow
from db.uuids import new_uuids
from schemas.email import normalise_email


class LeadCRUD:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_or_create_by_email(self, email: str) -> Lead:
        """Race-safe: two workers creating the same e-mail end with one Lead."""
        email = normalise_email(email)
        await self.upsert_many([email])
        lead = await self._get_by_email(email)
        assert lead is not None
        return lead

    async def upsert_many(self, emails: Iterable[str]) -> dict[str, str]:
        """Map every e-mail to its Lead's uuid, creating the missing Leads.

        Known leads are read first (most contacts come back), the rest inserted with ON CONFLICT
        DO NOTHING; only if another worker won a race for one of them is it read again.
        """
        unique = sorted(set(emails))
        found = await self._uuids_of(unique)
        missing = [e for e in unique if e not in found]
        if missing:
            now, fresh = utcnow(), dict(zip(missing, new_uuids(len(missing)), strict=True))
            rows = [{"uuid": u, "email": e, "created_at": now} for e, u in fresh.items()]
            stmt = insert_ignoring_conflicts(self.session, Lead.__table__, ["email"])
            inserted = await self.session.execute(stmt, rows)
            raced = inserted.rowcount != len(rows)  # type: ignore[attr-defined]
            found.update(await self._uuids_of(missing) if raced else fresh)
        return found

    async def _uuids_of(self, emails: Sequence[str]) -> dict[str, str]:
        if not emails:
            return {}
        result = await self.session.execute(
            select(Lead.email, Lead.uuid).where(Lead.email.in_(emails))
        )
        return {email: lead_uuid for email, lead_uuid in result}

    async def _get_by_email(self, email: str) -> Lead | None:
        result = await self.session.execute(
            select(Lead).where(Lead.email == normalise_email(email))
        )
        return result.scalar_one_or_none()

    async def get_by_uuid(self, lead_uuid: str) -> Lead | None:
        return await self.session.get(Lead, lead_uuid)

    async def find_by_email(self, email: str) -> list[Lead]:
        lead = await self._get_by_email(email)
        return [lead] if lead is not None else []

    async def list(self, limit: int, offset: int) -> Sequence[Lead]:
        stmt = select(Lead).order_by(Lead.created_at, Lead.uuid).limit(limit).offset(offset)
        return (await self.session.scalars(stmt)).all()
