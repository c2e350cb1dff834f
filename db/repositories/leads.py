"""LeadCRUD: find-or-create by normalised e-mail, one at a time or a whole batch at once."""

import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Lead
from db.repositories.dialect_insert import insert_ignoring_conflicts
from db.types import utcnow
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
        """Insert the missing e-mails (ON CONFLICT DO NOTHING) and map every e-mail to its uuid."""
        unique = sorted(set(emails))
        if not unique:
            return {}
        now = utcnow()
        rows = [{"uuid": str(uuid.uuid4()), "email": e, "created_at": now} for e in unique]
        stmt = insert_ignoring_conflicts(self.session, Lead.__table__, ["email"])
        await self.session.execute(stmt, rows)
        found = await self.session.execute(
            select(Lead.email, Lead.uuid).where(Lead.email.in_(unique))
        )
        return {email: lead_uuid for email, lead_uuid in found}

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
