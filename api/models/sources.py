"""Sources and their operator weights."""

from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema

from api.models.common import PatchBody
from schemas.fields import DbId, StorableLine, StorableUpTo, Weight

Identifier = Annotated[str, StorableLine(100), Field(examples=["telegram-bot"])]


Description = Annotated[str, StorableUpTo(2000), Field(examples=["Support bot"])]
MAX_WAIT_HELP = "a waiting interaction older than this gets one `interaction.overdue` event"
MaxWait = Annotated[StrictInt, Field(ge=1, le=7 * 86400, examples=[300], description=MAX_WAIT_HELP)]
ACCEPT_TIMEOUT_HELP = (
    "set: the chosen operator is offered each interaction and has this many seconds to accept "
    "it (`interaction.accept`); an offer not accepted expires and goes to another operator"
)
AcceptTimeout = Annotated[
    StrictInt, Field(ge=1, le=86400, examples=[30], description=ACCEPT_TIMEOUT_HELP)
]
STICKY_HELP = (
    "a lead's new interaction goes to the operator of its most recent one when that operator "
    "is active, weighted for this source and under its limit"
)


class SourceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    identifier: Identifier
    description: Description = ""
    sticky: StrictBool = Field(default=False, description=STICKY_HELP)
    max_wait_s: MaxWait | None = None
    accept_timeout_s: AcceptTimeout | None = None


class SourcePatch(PatchBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"sticky": True}]})

    identifier: Identifier | SkipJsonSchema[None] = None
    description: Description | SkipJsonSchema[None] = None
    sticky: StrictBool | SkipJsonSchema[None] = None
    max_wait_s: MaxWait | None = None
    accept_timeout_s: AcceptTimeout | None = None

    # null: no SLA any more; no offers any more (assigned at once)
    nullable: ClassVar[frozenset[str]] = frozenset({"max_wait_s", "accept_timeout_s"})


class SourceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int = Field(examples=[1])
    identifier: str = Field(examples=["telegram-bot"])
    description: str = Field(examples=["Support bot"])
    sticky: bool = Field(description=STICKY_HELP)
    max_wait_s: int | None = Field(description=MAX_WAIT_HELP)
    accept_timeout_s: int | None = Field(description=ACCEPT_TIMEOUT_HELP)
    created_at: datetime


class OperatorWeight(BaseModel):
    model_config = ConfigDict(from_attributes=True, extra="forbid")

    operator_id: DbId
    weight: Weight


class SourceWeights(BaseModel):
    """A source's whole set of weights: what PUT replaces and what GET answers (same shape)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"weights": [{"operator_id": 1, "weight": 10}, {"operator_id": 2, "weight": 30}]}
            ]
        },
    )

    weights: list[OperatorWeight] = Field(max_length=10_000)

    @field_validator("weights")
    @classmethod
    def _operators_unique(cls, value: list[OperatorWeight]) -> list[OperatorWeight]:
        ids = [w.operator_id for w in value]
        if len(ids) != len(set(ids)):
            raise ValueError("each operator_id may appear only once")
        return value

    def as_dict(self) -> dict[int, int]:
        return {w.operator_id: w.weight for w in self.weights}
