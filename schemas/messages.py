"""Inbound AMQP commands. The models *are* the validation: a body that does not
parse into one of these is dead-lettered with pydantic's reason."""

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from schemas.email import LeadEmail

PAYLOAD_LIMIT_BYTES = 64 * 1024


def payload_size(payload: Any) -> int:
    """Size of the payload as compact UTF-8 JSON, the form it is stored in."""
    return len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode())


class CreateInteraction(BaseModel):
    """`interaction.create`: a new contact from a lead through a source."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    email: LeadEmail = Field(examples=["client@example.com"])
    source_id: int = Field(gt=0, examples=[1])
    payload: JsonValue = Field(default=None, examples=[{"text": "Hello, I need help"}])

    @field_validator("payload")
    @classmethod
    def _payload_within_limit(cls, value: JsonValue) -> JsonValue:
        size = payload_size(value)
        if size > PAYLOAD_LIMIT_BYTES:
            raise ValueError(f"payload is {size} bytes encoded, limit is {PAYLOAD_LIMIT_BYTES}")
        return value


class CloseInteraction(BaseModel):
    """`interaction.close`: the contact is finished and its operator is free again."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    interaction_id: int = Field(gt=0, examples=[42])
