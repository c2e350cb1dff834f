"""Leads, found by any contact (a phone in any format), and a lead's interactions."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import TypeAdapter, ValidationError

from api.deps import SessionDep, StateDep
from api.docs import errors
from api.models.common import NotFound
from api.models.interactions import InteractionOut
from api.models.leads import LeadOut
from api.routes.params import API_PREFIX, PageQuery
from db.repositories.interactions import InteractionCRUD, InteractionFilter
from db.repositories.leads import LeadCRUD
from schemas.contacts import PHONE_REGION, Contact, ContactKind, LeadHandle, LeadPhone
from schemas.email import LeadEmail

routes = APIRouter(prefix=f"{API_PREFIX}/leads", tags=["leads"])
_NORMAL_FORMS: dict[ContactKind, TypeAdapter[str]] = {
    ContactKind.EMAIL: TypeAdapter(LeadEmail),
    ContactKind.PHONE: TypeAdapter(LeadPhone),
    ContactKind.HANDLE: TypeAdapter(LeadHandle),
}


def _contact(kind: ContactKind, raw: str, phone_region: str | None) -> Contact | None:
    """The stored form of what was asked for, or None when no lead can have it."""
    adapter = _NORMAL_FORMS[kind]
    try:
        return Contact(kind, adapter.validate_python(raw, context={PHONE_REGION: phone_region}))
    except ValidationError:
        return None


@routes.get("", response_model=list[LeadOut])
async def list_leads(
    session: SessionDep,
    state: StateDep,
    page: PageQuery,
    email: Annotated[
        str | None, Query(max_length=320, description="matched trimmed and lower-cased")
    ] = None,
    phone: Annotated[
        str | None, Query(max_length=64, description="any format; compared in E.164")
    ] = None,
    handle: Annotated[str | None, Query(max_length=200, description="compared exactly")] = None,
) -> list[LeadOut]:
    """All leads, or the one with this contact (an empty list when there is none)."""
    asked = [
        (kind, value)
        for kind, value in (
            (ContactKind.EMAIL, email),
            (ContactKind.PHONE, phone),
            (ContactKind.HANDLE, handle),
        )
        if value is not None
    ]
    async with session.begin():
        crud = LeadCRUD(session)
        if not asked:
            return [
                LeadOut.model_validate(lead) for lead in await crud.list(page.limit, page.offset)
            ]
        found: dict[str, LeadOut] = {}
        for kind, value in asked:
            contact = _contact(kind, value, state.settings.default_phone_region)
            for lead in await crud.find_by_contact(contact) if contact else []:
                found.setdefault(lead.uuid, LeadOut.model_validate(lead))
    return list(found.values())


@routes.get("/{lead_uuid}", response_model=LeadOut, responses=errors(404))
async def get_lead(lead_uuid: uuid.UUID, session: SessionDep) -> LeadOut:
    """A lead merged into another is gone: 404 (its interactions are the survivor's)."""
    async with session.begin():
        lead = await LeadCRUD(session).get_by_uuid(str(lead_uuid))
        if lead is None:
            raise NotFound(f"lead {lead_uuid} not found")
        return LeadOut.model_validate(lead)


@routes.get("/{lead_uuid}/interactions", response_model=list[InteractionOut], responses=errors(404))
async def lead_interactions(
    lead_uuid: uuid.UUID, session: SessionDep, page: PageQuery
) -> list[InteractionOut]:
    async with session.begin():
        if await LeadCRUD(session).get_by_uuid(str(lead_uuid)) is None:
            raise NotFound(f"lead {lead_uuid} not found")
        where = InteractionFilter(lead_uuid=str(lead_uuid))
        rows = await InteractionCRUD(session).list(where, page.limit, page.offset)
    return [InteractionOut.model_validate(r) for r in rows]
