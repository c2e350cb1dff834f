"""InteractionCRUD: interactions as the API reads them, and the spec's single-row create and
close, through the router. The routing statements are in `db/statements/interactions.py`."""

from collections.abc import Sequence
from random import Random
from typing import Any, TypedDict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from db.models import Interaction, Lead
from db.routing_store.sessions import session_store
from db.types import utcnow
from routing.router import AssignmentRefused, Router
from routing.rows import NewInteraction
from schemas.events import InteractionStatus

WAITING = InteractionStatus.WAITING


class InteractionFilter(TypedDict, total=False):
    """Columns an interaction must equal to be listed; a key left out does not filter."""

    status: InteractionStatus
    operator_id: int
    source_id: int
    message_id: str
    lead_uuid: str


class InteractionCRUD:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(
        self,
        lead_uuid: str,
        source_id: int,
        operator_id: int | None = None,
        *,
        payload: Any = None,
        priority: int = 0,
        rng: Random | None = None,
    ) -> Interaction:
        """The spec's single-row create: a waiting interaction of this lead, assigned to
        `operator_id` if one is given, as the API's manual assignment does it (`Router.assign`:
        the operator must be active and under its limit; its load grows in this transaction)."""
        store = session_store(self.session)
        row = NewInteraction(
            lead_uuid, source_id, None, WAITING, True, payload, None, None, None, utcnow(),
            None, priority, None,
        )  # fmt: skip
        [interaction_id] = await store.insert_interactions([row])
        if operator_id is not None:
            await Router(store, rng or Random()).assign(interaction_id, operator_id)
        return await self._fresh(interaction_id)

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

    async def set_inactive(self, interaction_id: int, rng: Random | None = None) -> None:
        """The spec's single-row close: what the API's close does (`Router.close`: its slot
        is freed, its waiting successors drained, `interaction.closed` stored). Closing a
        closed or an unknown interaction changes nothing."""
        try:
            await Router(session_store(self.session), rng or Random()).close(interaction_id)
        except AssignmentRefused as refused:
            if not refused.not_found:
                raise
            return
        await self._fresh(interaction_id)

    async def _fresh(self, interaction_id: int) -> Interaction:
        """The row as the router left it: its statements bypass the session's identity map."""
        interaction = await self.session.get(Interaction, interaction_id, populate_existing=True)
        assert interaction is not None
        return interaction

    async def list(
        self, where: InteractionFilter, limit: int = 100, offset: int = 0
    ) -> Sequence[Interaction]:
        stmt = select(Interaction).filter_by(**where)
        stmt = stmt.order_by(Interaction.id).limit(limit).offset(offset)
        return (await self.session.scalars(stmt)).all()
