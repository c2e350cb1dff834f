"""InteractionCRUD: interactions as rows, written set-based for the worker's batches."""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any, TypedDict, cast

from sqlalchemy import Select, Table, and_, func, insert, or_, select, text, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from db.models import ExpiredOffer, Interaction, Lead, Source
from db.repositories.operators import OperatorCRUD
from db.types import utcnow
from routing.facts import InteractionFacts, WaitingCursor
from routing.identity import SHOWN_CONTACTS
from routing.rows import NewInteraction, Offer
from schemas.events import HOLDS_A_SLOT, InteractionStatus

ASSIGNED, WAITING, CLOSED, OFFERED = (
    InteractionStatus.ASSIGNED,
    InteractionStatus.WAITING,
    InteractionStatus.CLOSED,
    InteractionStatus.OFFERED,
)
CLOSE_ATTEMPTS = 3  # reads of a changing interaction before `set_inactive` gives up


class InteractionFilter(TypedDict, total=False):
    """Columns an interaction must equal to be listed; a key left out does not filter."""

    status: InteractionStatus
    operator_id: int
    source_id: int
    message_id: str
    lead_uuid: str


# In the order of `InteractionFacts`'s fields, which is built from these rows positionally.
_FACT_COLUMNS = tuple(
    getattr(Lead if f.name in SHOWN_CONTACTS else Interaction, f.name)
    for f in fields(InteractionFacts)
)


class InteractionCRUD:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(
        self, lead_uuid: str, source_id: int, operator_id: int | None = None, **extra: Any
    ) -> Interaction:
        """The spec's single-row create; the worker uses `insert_many`.

        An operator given takes a slot: its `current_load` grows in this transaction, updated
        before the insert, in the router's lock order (operators, then interactions). Neither
        its limit nor its `active` flag is checked: the Router's `assign` is the checked way.
        """
        if operator_id is not None:
            await OperatorCRUD(self.session).add_to_loads({operator_id: 1})
        now = utcnow()
        interaction = Interaction(
            lead_uuid=lead_uuid,
            source_id=source_id,
            operator_id=operator_id,
            status=WAITING if operator_id is None else ASSIGNED,
            is_active=True,
            created_at=now,
            assigned_at=None if operator_id is None else now,
            **extra,
        )
        self.session.add(interaction)
        await self.session.flush()
        return interaction

    async def insert_many(self, rows: Sequence[NewInteraction]) -> list[int]:
        """Insert the batch with ids reserved up front; returns them in row order.

        Not `INSERT ... RETURNING` in parameter order: SQLite cannot promise the order of
        returned rows, so SQLAlchemy would fall back to one INSERT per row there.
        """
        if not rows:
            return []
        ids = await self._reserve_ids(len(rows))
        table = cast(Table, Interaction.__table__)  # Core, not ORM bulk: no objects needed
        params = [{**row._asdict(), "id": i} for row, i in zip(rows, ids, strict=True)]
        await self.session.execute(insert(table), params)
        return ids

    async def _reserve_ids(self, count: int) -> list[int]:
        """PostgreSQL: from the id sequence. SQLite: after the current maximum, which is safe
        because every SQLite transaction here holds the write lock from its BEGIN."""
        if self.session.get_bind().dialect.name == "postgresql":
            stmt = text(
                "SELECT nextval(pg_get_serial_sequence('interactions', 'id')) "
                "FROM generate_series(1, :n)"
            )
            return [int(i) for i in (await self.session.scalars(stmt, {"n": count})).all()]
        top = await self.session.scalar(select(func.coalesce(func.max(Interaction.id), 0)))
        return list(range(int(top or 0) + 1, int(top or 0) + 1 + count))

    async def get_by_id(self, interaction_id: int) -> Interaction | None:
        return await self.session.get(Interaction, interaction_id)

    async def get_detail(self, interaction_id: int) -> Interaction | None:
        stmt = (
            select(Interaction)
            .where(Interaction.id == interaction_id)
            .options(
                selectinload(Interaction.lead).selectinload(Lead.contacts),
                selectinload(Interaction.source),
                selectinload(Interaction.operator),
            )
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def set_inactive(self, interaction_id: int) -> None:
        """The spec's single-row close; an assigned interaction's slot is freed in this
        transaction. Bare: no event, no drain (the API and the worker close through the Router).

        As the router does, it locks the operator before changing what it holds; the UPDATE
        only applies to the status and operator it read, so a drain or reassignment committed
        in between makes it read again rather than free the wrong slot (or none).
        """
        for _ in range(CLOSE_ATTEMPTS):
            seen = await self._status_and_operator(interaction_id)
            if seen is None:
                return
            status, operator_id = seen
            slot = operator_id if status in HOLDS_A_SLOT else None
            if slot is not None:
                await OperatorCRUD(self.session).lock_states([slot])
            if await self._close_as_seen(interaction_id, status, operator_id):
                if slot is not None:
                    await OperatorCRUD(self.session).add_to_loads({slot: -1})
                return
        raise RuntimeError(f"interaction {interaction_id} keeps changing; try again")

    async def _status_and_operator(
        self, interaction_id: int
    ) -> tuple[InteractionStatus, int | None] | None:
        stmt = select(Interaction.status, Interaction.operator_id).where(
            Interaction.id == interaction_id
        )
        row = (await self.session.execute(stmt)).one_or_none()
        return None if row is None else (row[0], row[1])

    async def _close_as_seen(
        self, interaction_id: int, status: InteractionStatus, operator_id: int | None
    ) -> bool:
        stmt = (
            update(Interaction)
            .where(
                Interaction.id == interaction_id,
                Interaction.status == status,
                Interaction.operator_id.is_not_distinct_from(operator_id),
            )
            .values(status=CLOSED, is_active=False, closed_at=utcnow())
            .execution_options(synchronize_session="fetch")
        )
        result = await self.session.execute(stmt)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def overdue_waiting(self, now: datetime, limit: int) -> list[InteractionFacts]:
        """Per source with an SLA (few), its waiting interactions older than the line; the
        cut-off is computed here, so the statement is the same on SQLite and PostgreSQL."""
        slas = await self.session.execute(
            select(Source.id, Source.max_wait_s).where(Source.max_wait_s.is_not(None))
        )
        late = [
            and_(
                Interaction.source_id == source_id,
                Interaction.created_at < now - timedelta(seconds=wait),
            )
            for source_id, wait in slas
            if wait is not None
        ]
        if not late:
            return []
        stmt = (
            self._facts_query()
            .where(Interaction.status == WAITING, Interaction.overdue_at.is_(None), or_(*late))
            .order_by(Interaction.id)
            .limit(limit)
            .with_for_update(of=Interaction, skip_locked=True)
        )
        return [InteractionFacts(*row) for row in (await self.session.execute(stmt))]

    async def set_overdue(self, interaction_ids: Iterable[int], now: datetime) -> None:
        ids = list(interaction_ids)
        if ids:
            await self.session.execute(
                update(Interaction)
                .where(Interaction.id.in_(ids), Interaction.overdue_at.is_(None))
                .values(overdue_at=now)
                .execution_options(synchronize_session=False)
            )

    async def set_closed(self, interaction_ids: Iterable[int], now: datetime) -> None:
        params = [
            {
                "id": i,
                "status": CLOSED,
                "is_active": False,
                "closed_at": now,
                "offer_expires_at": None,
            }
            for i in interaction_ids
        ]
        if params:
            await self.session.execute(update(Interaction), params)

    async def set_assigned(self, assignments: dict[int, int], now: datetime) -> None:
        """interaction_id -> operator_id, as one bulk UPDATE by primary key."""
        params = [
            {
                "id": i,
                "operator_id": op,
                "status": ASSIGNED,
                "assigned_at": now,
                "offer_expires_at": None,
            }
            for i, op in assignments.items()
        ]
        if params:
            await self.session.execute(update(Interaction), params)

    async def set_offered(self, offers: Mapping[int, Offer], now: datetime) -> None:
        params = [
            {
                "id": i,
                "operator_id": offer.operator_id,
                "status": OFFERED,
                "assigned_at": now,
                "offer_expires_at": offer.expires_at,
            }
            for i, offer in offers.items()
        ]
        if params:
            await self.session.execute(update(Interaction), params)

    async def due_offers(self, now: datetime, limit: int) -> list[InteractionFacts]:
        stmt = (
            self._facts_query()
            .where(Interaction.status == OFFERED, Interaction.offer_expires_at <= now)
            .order_by(Interaction.offer_expires_at, Interaction.id)
            .limit(limit)
        )
        return [InteractionFacts(*row) for row in (await self.session.execute(stmt))]

    async def offer_deadlines(self, interaction_ids: Iterable[int]) -> dict[int, datetime]:
        wanted = set(interaction_ids)
        if not wanted:
            return {}
        stmt = select(Interaction.id, Interaction.offer_expires_at).where(
            Interaction.id.in_(wanted),
            Interaction.status == OFFERED,
            Interaction.offer_expires_at.is_not(None),
        )
        return {i: at for i, at in await self.session.execute(stmt) if at is not None}

    async def withdraw_offers(self, expired: Mapping[int, int], now: datetime) -> None:
        if not expired:
            return
        params = [
            {
                "id": i,
                "operator_id": None,
                "status": WAITING,
                "assigned_at": None,
                "offer_expires_at": None,
            }
            for i in expired
        ]
        await self.session.execute(update(Interaction), params)
        rows = [
            {"interaction_id": i, "operator_id": op, "expired_at": now} for i, op in expired.items()
        ]
        await self.session.execute(insert(cast(Table, ExpiredOffer.__table__)), rows)

    async def expired_operators(self, interaction_ids: Iterable[int]) -> dict[int, set[int]]:
        wanted = set(interaction_ids)
        if not wanted:
            return {}
        stmt = select(ExpiredOffer.interaction_id, ExpiredOffer.operator_id).where(
            ExpiredOffer.interaction_id.in_(wanted)
        )
        found: dict[int, set[int]] = {}
        for interaction_id, operator_id in await self.session.execute(stmt):
            found.setdefault(interaction_id, set()).add(operator_id)
        return found

    async def ids_by_message_id(self, message_ids: Iterable[str]) -> dict[str, int]:
        wanted = set(message_ids)
        if not wanted:
            return {}
        stmt = select(Interaction.message_id, Interaction.id).where(
            Interaction.message_id.in_(wanted)
        )
        return {str(m): i for m, i in (await self.session.execute(stmt))}

    async def facts(
        self, interaction_ids: Iterable[int], *, lock: bool = False
    ) -> dict[int, InteractionFacts]:
        wanted = set(interaction_ids)
        if not wanted:
            return {}
        stmt = self._facts_query().where(Interaction.id.in_(wanted))
        if lock:
            stmt = stmt.order_by(Interaction.id).with_for_update(of=Interaction)
        return {row.id: InteractionFacts(*row) for row in (await self.session.execute(stmt))}

    async def set_sequences(self, last: Mapping[int, int]) -> None:
        """interaction_id -> `last_sequence`, as one bulk UPDATE by primary key."""
        params = [{"id": i, "last_sequence": n} for i, n in last.items()]
        if params:
            await self.session.execute(update(Interaction), params)

    async def last_operators(self, lead_uuids: Iterable[str]) -> dict[str, int | None]:
        wanted = set(lead_uuids)
        if not wanted:
            return {}
        latest = (
            select(func.max(Interaction.id))
            .where(Interaction.lead_uuid.in_(wanted))
            .group_by(Interaction.lead_uuid)
        )
        stmt = select(Interaction.lead_uuid, Interaction.operator_id).where(
            Interaction.id.in_(latest.scalar_subquery())
        )
        return {lead: operator for lead, operator in await self.session.execute(stmt)}

    async def next_waiting(
        self, source_ids: Iterable[int], after: WaitingCursor | None, limit: int
    ) -> list[InteractionFacts]:
        """Waiting interactions of these sources, highest priority first and oldest first within
        one, after the cursor; locked against a racing close."""
        past = (
            true()
            if after is None
            else or_(
                Interaction.priority < after.priority,
                and_(Interaction.priority == after.priority, Interaction.id > after.id),
            )
        )
        stmt = (
            self._facts_query()
            .where(Interaction.status == WAITING, Interaction.source_id.in_(set(source_ids)), past)
            .order_by(Interaction.priority.desc(), Interaction.id)
            .limit(limit)
            .with_for_update(of=Interaction)
        )
        return [InteractionFacts(*row) for row in (await self.session.execute(stmt))]

    @staticmethod
    def _facts_query() -> Select[Any]:
        return select(*_FACT_COLUMNS).join(Lead, Lead.uuid == Interaction.lead_uuid)

    async def list(
        self, where: InteractionFilter, limit: int = 100, offset: int = 0
    ) -> Sequence[Interaction]:
        stmt = select(Interaction).filter_by(**where)
        stmt = stmt.order_by(Interaction.id).limit(limit).offset(offset)
        return (await self.session.scalars(stmt)).all()
