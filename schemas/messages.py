"""Inbound AMQP commands. The models *are* the validation: a body that does not
parse into one of these is dead-lettered with pydantic's reason."""

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from schemas.email import LeadEmail

PAYLOAD_LIMIT_BYTES = 64 * 1024
# `\u0000` preceded by an even number of backslashes: an escaped NUL, not the text "\u0000".
_ESCAPED_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def encode_payload(payload: Any) -> str:
    """The payload as compact JSON, the form it is stored in."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def payload_size(payload: Any) -> int:
    return len(encode_payload(payload).encode())


class CreateInteraction(BaseModel):
    """`interaction.create`: a new contact from a lead through a source."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    email: LeadEmail = Field(examples=["client@example.com"])
    source_id: int = Field(gt=0, examples=[1])
    payload: JsonValue = Field(default=None, examples=[{"text": "Hello, I need help"}])

    @field_validator("payload")
    @classmethod
    def _payload_storable(cls, value: JsonValue) -> JsonValue:
        """At most 64 KiB encoded, and no NUL character (PostgreSQL's jsonb cannot hold one,
        so SQLite and PostgreSQL deployments refuse the same payloads)."""
        encoded = encode_payload(value)
        if _ESCAPED_NUL.search(encoded):
            raise ValueError("payload contains the NUL character (\\u0000), which cannot be stored")
        size = len(encoded.encode())
        if size > PAYLOAD_LIMIT_BYTES:
            raise ValueError(f"payload is {size} bytes encoded, limit is {PAYLOAD_LIMIT_BYTES}")
        return value


class CloseInteraction(BaseModel):
    """`interaction.close`: the contact is finished and its operator is free again."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    interaction_id: int = Field(gt=0, examples=[42])
