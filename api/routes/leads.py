"""Leads, looked up by normalised e-mail, and a lead's interactions."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import TypeAdapter, ValidationError

from api.deps import SessionDep
from api.docs import errors
from api.models.common import NotFound
from api.models.interactions import InteractionOut
from api.models.leads import LeadOut
from api.routes.params import API_PREFIX, PageQuery
from db.repositories.interactions import InteractionCRUD, InteractionFilter
from db.repositories.leads import LeadCRUD
from schemas.email import LeadEmail

router = APIRouter(prefix=f"{API_PREFIX}/leads", tags=["leads"])
_email = TypeAdapter(LeadEmail)


def _normalised(email: str) -> str | None:
    """The stored form of the address, or None when no lead can have it."""
    try:
        return _email.validate_python(email)
    except ValidationError:
        return None


@router.get("", response_model=list[LeadOut])
async def list_leads(
    session: SessionDep,
    page: PageQuery,
    email: Annotated[
        str | None, Query(max_length=320, description="matched trimmed and lower-cased")
    ] = None,
) -> list[LeadOut]:
    """All leads, or the one with this e-mail (an empty list when there is none)."""
    async with session.begin():
        if email is None:
            leads = list(await LeadCRUD(session).list(page.limit, page.offset))
        else:
            normalised = _normalised(email)
            leads = await LeadCRUD(session).find_by_email(normalised) if normalised else []
    return [LeadOut.model_validate(lead) for lead in leads]


@router.get("/{lead_uuid}/interactions", response_model=list[InteractionOut], responses=errors(404))
async def lead_interactions(
    lead_uuid: uuid.UUID, session: SessionDep, page: PageQuery
) -> list[InteractionOut]:
    async with session.begin():
        if await LeadCRUD(session).get_by_uuid(str(lead_uuid)) is None:
            raise NotFound(f"lead {lead_uuid} not found")
        where = InteractionFilter(lead_uuid=str(lead_uuid))
        rows = await InteractionCRUD(session).list(where, page.limit, page.offset)
    return [InteractionOut.model_validate(r) for r in rows]
