"""Leads: a person known by any of their contacts (e-mail, phone, channel handle)."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from schemas.contacts import ContactKind


class ContactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: ContactKind
    value: str = Field(examples=["+79991234567"])


class LeadOut(BaseModel):
    """`email`, `phone`, `handle`: the lead's first contact of that kind, or null."""

    model_config = ConfigDict(from_attributes=True)

    uuid: str = Field(examples=["5b0c0d3e-8a4b-4f8e-9c39-0a8d3c1e2f11"])
    email: str | None = Field(examples=["client@example.com"])
    phone: str | None = Field(examples=["+79991234567"])
    handle: str | None = Field(examples=["telegram:123456789"])
    contacts: list[ContactOut]
    created_at: datetime
