"""Interactions: list rows, the detail with its relations inline, and the API's commands."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from api.models.leads import LeadOut
from api.models.operators import OperatorOut
from api.models.sources import SourceOut
from schemas.events import InteractionStatus
from schemas.fields import DbId
from schemas.messages import CreateInteraction


class InteractionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int = Field(examples=[42])
    lead_uuid: str
    source_id: int = Field(examples=[1])
    operator_id: int | None = Field(examples=[3])
    status: InteractionStatus
    is_active: bool
    payload: JsonValue = Field(examples=[{"text": "Hello"}])
    message_id: str | None
    created_at: datetime
    assigned_at: datetime | None
    closed_at: datetime | None


class InteractionDetail(InteractionOut):
    """One interaction with its lead, source and operator (null while waiting)."""

    lead: LeadOut
    source: SourceOut
    operator: OperatorOut | None


def _email_format(schema: dict[str, Any]) -> None:
    schema["properties"]["email"]["format"] = "email"


class CreateInteractionBody(CreateInteraction):
    """The `interaction.create` body, validated by the very model the worker validates with."""

    model_config = ConfigDict(json_schema_extra=_email_format)


class AssignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operator_id: DbId


class Accepted(BaseModel):
    """The `interaction.create` was confirmed by the broker; the worker routes it from there."""

    message_id: str = Field(examples=["9f1c2b7e0d4a4c5e8b6a3f2d1e0c9b8a"])
