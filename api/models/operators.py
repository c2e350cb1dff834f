"""Operators as the API reads and writes them."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from api.models.common import LoadLimit, Name


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

    name: Name | None = None
    load_limit: LoadLimit | None = None
    active: bool | None = None

    def changes(self) -> dict[str, object]:
        return {k: v for k, v in self.model_dump(exclude_unset=True).items() if v is not None}


class OperatorOut(BaseModel):
    """`current_load` is the counter the worker routes by: the operator's assigned interactions."""

    model_config = ConfigDict(from_attributes=True)

    id: int = Field(examples=[3])
    name: str = Field(examples=["Anna Petrova"])
    active: bool
    load_limit: int = Field(examples=[5])
    current_load: int = Field(examples=[2])
    created_at: datetime
