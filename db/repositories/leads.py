"""LeadCRUD: leads and the contacts that identify them, one at a time (API, spec). A batch's
leads are the router's (`routing/identity.py`, `db/statements/leads.py`)."""

from collections.abc import Sequence
from random import Random

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from db.models import Lead
from db.routing_store.sessions import session_store
from routing.router import Router
from schemas.contacts import Contact, ContactKind
from schemas.email import normalise_email

CREATE_ATTEMPTS = 3  # reads of a lead that another transaction is creating meanwhile


class LeadCRUD:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_or_create_by_email(self, email: str, rng: Random | None = None) -> Lead:
        """The spec's method: the lead the router finds or makes for this e-mail.

        Race-safe: two transactions creating the same e-mail end with one lead. The contact is
        unique; the loser's insert fails, is rolled back to its savepoint, and the next attempt
        reads the winner's lead."""
        contact = Contact(ContactKind.EMAIL, normalise_email(email))
        router = Router(session_store(self.session), rng or Random())
        for _ in range(CREATE_ATTEMPTS):
            try:
                async with self.session.begin_nested():
                    uuid = (await router.resolve_leads([(0, [contact])])).lead_of[0]
            except IntegrityError:
                continue
            lead = await self.session.get(Lead, uuid)
            assert lead is not None
            return lead
        raise RuntimeError(f"the lead of {contact.value} keeps changing; try again")

    async def get_by_uuid(self, lead_uuid: str) -> Lead | None:
        stmt = select(Lead).where(Lead.uuid == lead_uuid).options(selectinload(Lead.contacts))
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def find_by_contact(self, contact: Contact) -> list[Lead]:
        owners, _ = await session_store(self.session).leads_of([contact])
        owner = owners.get(contact)
        lead = None if owner is None else await self.get_by_uuid(owner)
        return [lead] if lead is not None else []

    async def list(self, limit: int, offset: int) -> Sequence[Lead]:
        stmt = (
            select(Lead)
            .options(selectinload(Lead.contacts))
            .order_by(Lead.created_at, Lead.uuid)
            .limit(limit)
            .offset(offset)
        )
        return (await self.session.scalars(stmt)).all()
