"""How a lead can be reached: e-mail, phone, channel handle. One definition for AMQP and HTTP.

A person writes through a Telegram bot today and calls tomorrow; the router recognises them by
any contact they share with an earlier interaction. For that, each kind has one normal form:
e-mails trimmed and lower-cased, phones in E.164 (parsed by `phonenumbers`, Google's
libphonenumber, not a regex), handles trimmed and compared exactly.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import phonenumbers
from pydantic import AfterValidator, StringConstraints, ValidationInfo

from schemas.fields import StorableLine

# Validation-context key: the ISO 3166 region of phone numbers written without `+country`.
PHONE_REGION = "phone_region"
MAX_PHONE_CHARS = 64
MAX_HANDLE_CHARS = 200


class ContactKind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    HANDLE = "handle"


@dataclass(frozen=True, slots=True)
class Contact:
    kind: ContactKind
    value: str  # normalised: what identity is decided on


def normalise_phone(raw: str, region: str | None) -> str:
    """E.164 (`+79991234567`), or ValueError saying why not in one line."""
    text = raw.strip()
    if not text.startswith("+") and region is None:
        raise ValueError(
            "has no country code (+…) and DEFAULT_PHONE_REGION is not set to say which country"
        )
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"is not a phone number ({exc._msg})") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_region(code: str) -> bool:
    return code in phonenumbers.SUPPORTED_REGIONS


def _phone_from_context(value: str, info: ValidationInfo) -> str:
    context: Any = info.context
    region = context.get(PHONE_REGION) if isinstance(context, dict) else None
    return normalise_phone(value, region)


LeadPhone = Annotated[
    str, StringConstraints(max_length=MAX_PHONE_CHARS), AfterValidator(_phone_from_context)
]
LeadHandle = Annotated[str, StorableLine(MAX_HANDLE_CHARS)]
