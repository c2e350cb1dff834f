"""Field types of the API's models; the numeric ones are shared with AMQP (`schemas.fields`).

Text refuses NUL, which PostgreSQL cannot store.
"""

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, StringConstraints


def storable(value: str) -> str:
    """PostgreSQL text rejects NUL, and lone surrogates cannot be encoded as UTF-8."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            "must be valid Unicode text, without lone surrogates such as \\ud800"
        ) from None
    return value


StorableText = Annotated[str, AfterValidator(storable)]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(storable),
    Field(examples=["Anna Petrova"]),
]


class ErrorOut(BaseModel):
    """Every error answers `{"detail": ...}`: a sentence, or pydantic's list for a 422."""

    detail: str = Field(examples=["operator 7 not found"])


class NotFound(Exception):
    """An unknown id in the path or the body: the app answers 404."""


class Conflict(Exception):
    """A request that contradicts the current state: the app answers 409."""
