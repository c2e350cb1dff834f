"""Operators as the API reads and writes them."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, StrictBool
from pydantic.json_schema import SkipJsonSchema

from api.models.common import Name, PatchBody
from schemas.fields import LoadLimit


class OperatorCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    load_limit: LoadLimit
    active: bool = True


class OperatorPatch(PatchBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"active": True, "load_limit": 10}]})

    name: Name | SkipJsonSchema[None] = None
    load_limit: LoadLimit | SkipJsonSchema[None] = None
    active: StrictBool | SkipJsonSchema[None] = None


class OperatorOut(BaseModel):
    """`current_load` is the counter the worker routes by: the operator's assigned interactions."""

    model_config = ConfigDict(from_attributes=True)

    id: int = Field(examples=[3])
    name: str = Field(examples=["Anna Petrova"])
    active: bool
    load_limit: int = Field(examples=[5])
    current_load: int = Field(examples=[2])
    created_at: datetime
