"""Operators as the API reads and writes them."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from api.models.common import Name
from schemas.fields import LoadLimit


class OperatorCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    load_limit: LoadLimit
    active: bool = True


class OperatorPatch(BaseModel):
    """Only the fields sent change; `null` is not a value for any of them."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"active": True, "load_limit": 10}]}
    )

    name: Name | SkipJsonSchema[None] = None
    load_limit: LoadLimit | SkipJsonSchema[None] = None
    active: bool | SkipJsonSchema[None] = None

    @field_validator("name", "load_limit", "active", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be left out, but not null")
        return value

    def changes(self) -> dict[str, object]:
        return self.model_dump(exclude_unset=True)


class OperatorOut(BaseModel):
    """`current_load` is the counter the worker routes by: the operator's assigned interactions."""

    model_config = ConfigDict(from_attributes=True)

    id: int = Field(examples=[3])
    name: str = Field(examples=["Anna Petrova"])
    active: bool
    load_limit: int = Field(examples=[5])
    current_load: int = Field(examples=[2])
    created_at: datetime
