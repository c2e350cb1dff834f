"""Set-up and inspection of the database the way an admin would leave it (through repositories)."""

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Interaction, Lead, LeadContact, Operator
from db.repositories.operators import OperatorCRUD
from db.repositories.sources import SourceCRUD
from db.repositories.weights import SourceOperatorSettingCRUD
from schemas.events import InteractionStatus

Factory = async_sessionmaker[AsyncSession]


async def add_source(
    sessions: Factory,
    identifier: str,
    description: str = "",
    *,
    sticky: bool = False,
    max_wait_s: int | None = None,
    accept_timeout_s: int | None = None,
) -> int:
    async with sessions() as session, session.begin():
        sources = SourceCRUD(session)
        return (
            await sources.create(
                identifier,
                description,
                sticky=sticky,
                max_wait_s=max_wait_s,
                accept_timeout_s=accept_timeout_s,
            )
        ).id


async def add_operator(sessions: Factory, name: str, load_limit: int, active: bool = True) -> int:
    async with sessions() as session, session.begin():
        return (await OperatorCRUD(session).create(name, load_limit, active)).id


async def set_weights(sessions: Factory, source_id: int, weights: dict[int, int]) -> None:
    async with sessions() as session, session.begin():
        await SourceOperatorSettingCRUD(session).replace_source_weights(source_id, weights)


async def interactions(sessions: Factory) -> list[Interaction]:
    async with sessions() as session:
        return list((await session.scalars(select(Interaction).order_by(Interaction.id))).all())


async def operators(sessions: Factory) -> dict[int, Operator]:
    async with sessions() as session:
        return {o.id: o for o in (await session.scalars(select(Operator))).all()}


async def assigned_counts(sessions: Factory) -> dict[int, int]:
    """Assigned interactions per operator, counted from rows (the definition of current_load)."""
    async with sessions() as session:
        stmt = (
            select(Interaction.operator_id, func.count())
            .where(Interaction.status == InteractionStatus.ASSIGNED)
            .group_by(Interaction.operator_id)
        )
        return {op: n for op, n in (await session.execute(stmt)) if op is not None}


async def lead_contacts(sessions: Factory) -> dict[str, set[tuple[str, str]]]:
    """Every lead's contacts, (kind, value)."""
    async with sessions() as session:
        found: dict[str, set[tuple[str, str]]] = {
            uuid: set() for uuid in (await session.scalars(select(Lead.uuid))).all()
        }
        for contact in (await session.scalars(select(LeadContact))).all():
            found[contact.lead_uuid].add((contact.kind, contact.value))
    return found


async def lead_emails(sessions: Factory) -> list[str]:
    async with sessions() as session:
        return list((await session.scalars(select(Lead.email).order_by(Lead.email))).all())


async def scalar(sessions: Factory, stmt: Any) -> Any:
    async with sessions() as session:
        return (await session.execute(stmt)).scalar()
