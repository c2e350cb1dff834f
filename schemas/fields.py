"""Field types every edge shares (AMQP bodies and HTTP bodies alike).

Numbers are strict: JSON `true`, `"50"` and `50.0` are not integers, so a careless bot's
boolean can never become id 1. Ids are bounded to PostgreSQL's `integer`, so an absurd id is
refused at the edge, never a database error.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from annotated_types import GroupedMetadata
from pydantic import AfterValidator, Field, StrictInt, StringConstraints

MAX_DB_INT = 2**31 - 1

DbId = Annotated[StrictInt, Field(ge=1, le=MAX_DB_INT, examples=[1])]
LoadLimit = Annotated[StrictInt, Field(ge=0, le=1_000_000, examples=[5])]
Weight = Annotated[StrictInt, Field(ge=1, le=100, examples=[50])]
Priority = Annotated[StrictInt, Field(ge=0, le=9, examples=[0])]


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


# Text PostgreSQL can store: no NUL, no lone surrogate (SQLite and PostgreSQL refuse alike).
StorableText = Annotated[str, AfterValidator(storable)]


@dataclass(frozen=True)
class StorableUpTo(GroupedMetadata):
    """`Annotated[str, StorableUpTo(2000)]`: at most `max_length` characters, then storable.

    The length is a constraint of the string itself, so an error says "String should have at
    most 2000 characters" at the field; `Field(max_length=…)` on `StorableText` would wrap the
    validator instead, and pydantic then names that wrapper (a `functools.partial` repr with an
    address) in the error's `loc`.
    """

    max_length: int

    def __iter__(self) -> Iterator[object]:
        yield from StringConstraints(max_length=self.max_length)
        yield AfterValidator(storable)


@dataclass(frozen=True)
class StorableLine(GroupedMetadata):
    """`Annotated[str, StorableLine(100)]`: a name-like line, stripped of surrounding white
    space, then 1 to `max_length` characters, then storable (checked in that order)."""

    max_length: int

    def __iter__(self) -> Iterator[object]:
        yield from StringConstraints(
            strip_whitespace=True, min_length=1, max_length=self.max_length
        )
        yield AfterValidator(storable)
