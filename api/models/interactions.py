"""Interactions: list rows, the detail with its relations inline, and the API's commands."""

from datetime import datetime
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from api.models.leads import LeadOut
from api.models.operators import OperatorOut
from api.models.sources import SourceOut
from schemas.contacts import PHONE_REGION
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
    priority: int = Field(examples=[0])
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


# The route takes the body raw and validates it itself (`validate_create`): a phone written
# without `+country` needs DEFAULT_PHONE_REGION, which FastAPI cannot hand to pydantic. The
# documentation still shows the model.
CREATE_BODY_DOCS: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": CreateInteractionBody.model_json_schema()}},
    }
}


def validate_create(raw: Any, phone_region: str | None) -> CreateInteraction:
    """The body as the worker will read it; a 422 in FastAPI's own shape when it is not."""
    try:
        return CreateInteractionBody.model_validate(raw, context={PHONE_REGION: phone_region})
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        raise RequestValidationError(errors, body=raw) from None


class AssignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operator_id: DbId


class Accepted(BaseModel):
    """The `interaction.create` was confirmed by the broker; the worker routes it from there."""

    message_id: str = Field(examples=["9f1c2b7e0d4a4c5e8b6a3f2d1e0c9b8a"])
