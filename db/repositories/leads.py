"""LeadCRUD: leads and the contacts that identify them, one at a time (API, spec) or a batch
at once (the router's `RoutingStore` on SQLAlchemy)."""

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import and_, delete, insert, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from db.models import Interaction, Lead, LeadContact
from db.repositories.dialect_insert import insert_ignoring_conflicts
from db.types import utcnow
from routing.identity import KnownLead, LeadContacts, LeadMerge
from routing.rows import NewContact, NewLead
from routing.uuids import new_uuids
from schemas.contacts import Contact, ContactKind
from schemas.email import normalise_email

KIND_OF = {kind.value: kind for kind in ContactKind}  # a dict lookup: ContactKind(v) is slower


class LeadCRUD:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- the router's batch statements ---------------------------------------------------------
    async def owners(self, contacts: Iterable[Contact]) -> dict[Contact, str]:
        wanted = {(c.kind.value, c.value) for c in contacts}
        if not wanted:
            return {}
        stmt = select(LeadContact.kind, LeadContact.value, LeadContact.lead_uuid).where(
            tuple_(LeadContact.kind, LeadContact.value).in_(sorted(wanted))
        )
        rows = await self.session.execute(stmt)
        return {Contact(KIND_OF[kind], value): lead for kind, value, lead in rows}

    async def owners_and_leads(
        self, contacts: Iterable[Contact], *, lock: bool = False
    ) -> tuple[dict[Contact, str], dict[str, KnownLead]]:
        """The owners of these contacts and their leads, in one round trip; with `lock`, the
        leads locked (`FOR UPDATE OF leads`, in uuid order). A lead merged away by a concurrent
        transaction while we waited for its lock drops out of the answer; its contacts then
        look new, and inserting one fails on the unique index, so the transaction is retried
        and reads the survivor."""
        by_kind: dict[str, set[str]] = {}
        for contact in contacts:
            by_kind.setdefault(contact.kind.value, set()).add(contact.value)
        if not by_kind:
            return {}, {}
        # Per kind present, `kind = k AND value = ANY(array)`: one index range scan each on the
        # unique (kind, value) index, with one bound array, where a row-value IN list of
        # (kind, value) pairs made PostgreSQL plan far worse (bench/README.md).
        matches = or_(
            *(
                and_(LeadContact.kind == kind, LeadContact.value.in_(sorted(values)))
                for kind, values in sorted(by_kind.items())
            )
        )
        stmt = (
            select(
                LeadContact.kind,
                LeadContact.value,
                Lead.uuid,
                Lead.created_at,
                Lead.email,
                Lead.phone,
                Lead.handle,
            )
            .join(Lead, Lead.uuid == LeadContact.lead_uuid)
            .where(matches)
            .order_by(Lead.uuid)
        )
        if lock:
            stmt = stmt.with_for_update(of=Lead)
        owners: dict[Contact, str] = {}
        leads: dict[str, KnownLead] = {}
        for kind, value, uuid, created_at, email, phone, handle in await self.session.execute(stmt):
            owners[Contact(KIND_OF[kind], value)] = uuid
            leads[uuid] = KnownLead(uuid, created_at, LeadContacts(email, phone, handle))
        return owners, leads

    async def insert_many(self, rows: Sequence[NewLead]) -> None:
        if rows:
            await self.session.execute(insert(Lead), [row._asdict() for row in rows])

    async def insert_contacts(self, rows: Sequence[NewContact]) -> None:
        if rows:
            await self.session.execute(insert(LeadContact), [row._asdict() for row in rows])

    async def show(self, shown: Mapping[str, LeadContacts]) -> None:
        for uuid, contacts in shown.items():
            await self.session.execute(
                update(Lead)
                .where(Lead.uuid == uuid)
                .values(email=contacts.email, phone=contacts.phone, handle=contacts.handle)
            )

    async def merge(self, merges: Sequence[LeadMerge]) -> None:
        for merge in merges:
            merged = list(merge.merged)
            for model in (LeadContact, Interaction):
                await self.session.execute(
                    update(model)
                    .where(model.lead_uuid.in_(merged))
                    .values(lead_uuid=merge.survivor)
                    .execution_options(synchronize_session=False)
                )
            await self.session.execute(delete(Lead).where(Lead.uuid.in_(merged)))

    async def advance_sequences(self, counts: Mapping[str, int]) -> dict[str, int]:
        """Add to each lead's `last_sequence`; the new values. One statement per lead: only
        merges number lead events, and a batch merges few."""
        last: dict[str, int] = {}
        for uuid, count in sorted(counts.items()):
            stmt = (
                update(Lead)
                .where(Lead.uuid == uuid)
                .values(last_sequence=Lead.last_sequence + count)
                .returning(Lead.last_sequence)
                .execution_options(synchronize_session=False)
            )
            last[uuid] = int((await self.session.execute(stmt)).scalar_one())
        return last

    # -- one lead at a time --------------------------------------------------------------------
    async def get_or_create_by_email(self, email: str) -> Lead:
        """The spec's method. Race-safe: two workers creating the same e-mail end with one Lead
        (the contact is unique; the loser's insert does nothing and it reads the winner's)."""
        contact = Contact(ContactKind.EMAIL, normalise_email(email))
        owner = (await self.owners([contact])).get(contact)
        if owner is None:
            uuid, now = new_uuids(1)[0], utcnow()
            await self.insert_many([NewLead(uuid, contact.value, None, None, now)])
            stmt = insert_ignoring_conflicts(self.session, LeadContact.__table__, ["kind", "value"])
            row = NewContact(uuid, ContactKind.EMAIL.value, contact.value, now)
            await self.session.execute(stmt, [row._asdict()])
            owner = (await self.owners([contact]))[contact]
            if owner != uuid:
                await self.session.execute(delete(Lead).where(Lead.uuid == uuid))
        lead = await self.session.get(Lead, owner)
        assert lead is not None
        return lead

    async def get_by_uuid(self, lead_uuid: str) -> Lead | None:
        stmt = select(Lead).where(Lead.uuid == lead_uuid).options(selectinload(Lead.contacts))
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def find_by_contact(self, contact: Contact) -> list[Lead]:
        owner = (await self.owners([contact])).get(contact)
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
