"""Field types of the API's models; those shared with AMQP are in `schemas.fields`."""

from typing import Annotated, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from schemas.fields import StorableLine

Name = Annotated[str, StorableLine(200), Field(examples=["Anna Petrova"])]


class ErrorOut(BaseModel):
    """Every error answers `{"detail": ...}`: a sentence, or pydantic's list for a 422."""

    detail: str = Field(examples=["operator 7 not found"])


class NotFound(Exception):
    """An unknown id in the path or the body: the app answers 404."""


class Conflict(Exception):
    """A request that contradicts the current state: the app answers 409."""


class PatchBody(BaseModel):
    """A PATCH body: only the fields sent change; `null` is not a value for any of them."""

    model_config = ConfigDict(extra="forbid")

    nullable: ClassVar[frozenset[str]] = frozenset()  # fields where null means "unset it"

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: object, info: ValidationInfo) -> object:
        if value is None and info.field_name not in cls.nullable:
            raise ValueError("may be left out, but not null")
        return value

    def changes(self) -> dict[str, object]:
        return self.model_dump(exclude_unset=True)
