"""InteractionCRUD: interactions as rows, written set-based for the worker's batches."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from db.models import Interaction, Lead
from db.types import utcnow
from routing.facts import InteractionFacts


@dataclass(frozen=True)
class InteractionFilter:
    status: str | None = None
    operator_id: int | None = None
    source_id: int | None = None
    message_id: str | None = None
    lead_uuid: str | None = None


_FACT_COLUMNS = (
    Interaction.id,
    Interaction.lead_uuid,
    Lead.email,
    Interaction.source_id,
    Interaction.operator_id,
    Interaction.status,
    Interaction.message_id,
    Interaction.correlation_id,
    Interaction.reply_to,
)


class InteractionCRUD:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(
        self, lead_uuid: str, source_id: int, operator_id: int | None = None, **extra: Any
    ) -> Interaction:
        """The spec's single-row create; the worker uses `insert_many`."""
        status = "assigned" if operator_id is not None else "waiting"
        now = utcnow()
        interaction = Interaction(
            lead_uuid=lead_uuid,
            source_id=source_id,
            operator_id=operator_id,
            status=status,
            is_active=True,
            created_at=now,
            assigned_at=now if operator_id else None,
            **extra,
        )
        self.session.add(interaction)
        await self.session.flush()
        return interaction

    async def insert_many(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Insert the batch with ids reserved up front; returns them in row order.

        Not `INSERT ... RETURNING` in parameter order: SQLite cannot promise the order of
        returned rows, so SQLAlchemy would fall back to one INSERT per row there.
        """
        if not rows:
            return []
        ids = await self._reserve_ids(len(rows))
        table = cast(Table, Interaction.__table__)  # Core, not ORM bulk: no objects needed
        await self.session.execute(
            insert(table), [{**r, "id": i} for r, i in zip(rows, ids, strict=True)]
        )
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
                selectinload(Interaction.lead),
                selectinload(Interaction.source),
                selectinload(Interaction.operator),
            )
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def set_inactive(self, interaction_id: int) -> None:
        """The spec's single-row close, without touching loads: prefer the router's close."""
        await self.set_closed([interaction_id], utcnow())

    async def set_closed(self, interaction_ids: Iterable[int], now: datetime) -> None:
        params = [
            {"id": i, "status": "closed", "is_active": False, "closed_at": now}
            for i in interaction_ids
        ]
        if params:
            await self.session.execute(update(Interaction), params)

    async def set_assigned(self, assignments: dict[int, int], now: datetime) -> None:
        """interaction_id -> operator_id, as one bulk UPDATE by primary key."""
        params = [
            {"id": i, "operator_id": op, "status": "assigned", "assigned_at": now}
            for i, op in assignments.items()
        ]
        if params:
            await self.session.execute(update(Interaction), params)

    async def ids_by_message_id(self, message_ids: Iterable[str]) -> dict[str, int]:
        wanted = set(message_ids)
        if not wanted:
            return {}
        stmt = select(Interaction.message_id, Interaction.id).where(
            Interaction.message_id.in_(wanted)
        )
        return {str(m): i for m, i in (await self.session.execute(stmt))}

    async def facts(self, interaction_ids: Iterable[int]) -> dict[int, InteractionFacts]:
        wanted = set(interaction_ids)
        if not wanted:
            return {}
        stmt = self._facts_query().where(Interaction.id.in_(wanted))
        return {row.id: InteractionFacts(*row) for row in (await self.session.execute(stmt))}

    async def oldest_waiting(
        self, source_ids: Iterable[int], after_id: int, limit: int
    ) -> list[InteractionFacts]:
        """Waiting interactions of these sources, oldest first, locked against a racing close."""
        stmt = (
            self._facts_query()
            .where(
                Interaction.status == "waiting",
                Interaction.source_id.in_(set(source_ids)),
                Interaction.id > after_id,
            )
            .order_by(Interaction.id)
            .limit(limit)
            .with_for_update(of=Interaction)
        )
        return [InteractionFacts(*row) for row in (await self.session.execute(stmt))]

    @staticmethod
    def _facts_query() -> Select[Any]:
        return select(  # type: ignore[return-value]
            *_FACT_COLUMNS
        ).join(Lead, Lead.uuid == Interaction.lead_uuid)

    async def list(
        self, where: InteractionFilter, limit: int = 100, offset: int = 0
    ) -> Sequence[Interaction]:
        stmt = select(Interaction).order_by(Interaction.id).limit(limit).offset(offset)
        for column, value in (
            (Interaction.status, where.status),
            (Interaction.operator_id, where.operator_id),
            (Interaction.source_id, where.source_id),
            (Interaction.message_id, where.message_id),
            (Interaction.lead_uuid, where.lead_uuid),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        return (await self.session.scalars(stmt)).all()
