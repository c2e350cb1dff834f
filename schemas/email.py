"""One definition of a valid, normalised lead e-mail, shared by the worker and the API."""

from functools import lru_cache
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BeforeValidator


def normalise_email(value: str) -> str:
    """Trim and lower-case, so one person is one Lead whatever the bot sent."""
    return value.strip().lower()


@lru_cache(maxsize=65_536)
def _validate(value: str) -> str:
    """Cached: leads write again and again, and full RFC validation is the costly part."""
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"invalid email {value!r}: {exc}") from None
    return value


def _strip_if_str(value: object) -> object:
    return normalise_email(value) if isinstance(value, str) else value


LeadEmail = Annotated[str, BeforeValidator(_strip_if_str), AfterValidator(_validate)]
