"""Inbound AMQP commands. The models *are* the validation: a body that does not
parse into one of these is dead-lettered with pydantic's reason."""

import json
import re
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    field_validator,
    model_validator,
)

from schemas.contacts import Contact, ContactKind, LeadHandle, LeadPhone
from schemas.email import LeadEmail
from schemas.fields import DbId, Priority

PAYLOAD_LIMIT_BYTES = 64 * 1024
RAW_BODY = "raw_body"  # validation-context key: the message body the document came from
# `\u0000` preceded by an even number of backslashes: an escaped NUL, not the text "\u0000".
_ESCAPED_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
# Any `\ud800`..`\udfff` escape: a surrogate, lone unless its pair follows.
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


def encode_payload(payload: Any) -> str:
    """The payload as compact JSON, the form it is stored in."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


EMAIL, PHONE, HANDLE = ContactKind.EMAIL, ContactKind.PHONE, ContactKind.HANDLE


class CreateInteraction(BaseModel):
    """`interaction.create`: a new contact from a lead through a source.

    The lead is known by any of its contacts (at least one); a phone without `+country` needs
    the validation context's `PHONE_REGION` (DEFAULT_PHONE_REGION)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: LeadEmail | None = Field(default=None, examples=["client@example.com"])
    phone: LeadPhone | None = Field(default=None, examples=["+7 999 123-45-67"])
    handle: LeadHandle | None = Field(default=None, examples=["telegram:123456789"])
    source_id: DbId
    priority: Priority = 0
    payload: JsonValue = Field(default=None, examples=[{"text": "Hello, I need help"}])

    @model_validator(mode="after")
    def _reachable(self) -> "CreateInteraction":
        if self.email is None and self.phone is None and self.handle is None:
            raise ValueError("at least one of email, phone, handle is required")
        return self

    @property
    def contacts(self) -> tuple[Contact, ...]:
        """The lead's contacts in this command, normalised, e-mail first."""
        found = ((EMAIL, self.email), (PHONE, self.phone), (HANDLE, self.handle))
        return tuple(Contact(kind, value) for kind, value in found if value is not None)

    @field_validator("payload")
    @classmethod
    def _payload_storable(cls, value: JsonValue, info: ValidationInfo) -> JsonValue:
        """At most 64 KiB encoded, no NUL character and no lone surrogate (PostgreSQL's jsonb
        can hold neither, so SQLite and PostgreSQL deployments refuse the same payloads)."""
        if _small_clean_body(info.context):
            return value
        encoded = encode_payload(value)
        if _ESCAPED_NUL.search(encoded):
            raise ValueError("payload contains the NUL character (\\u0000), which cannot be stored")
        try:
            size = len(encoded.encode())
        except UnicodeEncodeError:
            raise ValueError(
                "payload contains a lone surrogate (\\ud800-\\udfff), not Unicode"
            ) from None
        if size > PAYLOAD_LIMIT_BYTES:
            raise ValueError(f"payload is {size} bytes encoded, limit is {PAYLOAD_LIMIT_BYTES}")
        return value


def _small_clean_body(context: Any) -> bool:
    """The worker passes the raw body: when it is small and spells no escaped NUL or surrogate,
    the payload inside cannot break a rule, so the hot path skips encoding it once more.

    Re-encoding can grow JSON at most ~4.5x (`1e15` becomes `1000000000000000.0`), hence /5;
    a raw NUL byte is not valid JSON, so a NUL in the payload must be spelled `\\u0000`.
    """
    body = context.get(RAW_BODY) if isinstance(context, dict) else None
    return (
        isinstance(body, bytes)
        and len(body) * 5 <= PAYLOAD_LIMIT_BYTES
        and (b"\\u0000" not in body)
        and _ESCAPED_SURROGATE.search(body) is None
    )


class CloseInteraction(BaseModel):
    """`interaction.close`: the contact is finished and its operator is free again."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interaction_id: DbId = Field(examples=[42])


class AcceptInteraction(BaseModel):
    """`interaction.accept`: the operator an interaction is offered to takes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interaction_id: DbId = Field(examples=[42])
    operator_id: DbId = Field(examples=[3])
