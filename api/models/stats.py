"""Read-only aggregates for dashboards and the demo."""

from pydantic import BaseModel, Field


class OperatorLoad(BaseModel):
    operator_id: int
    name: str
    active: bool
    current_load: int
    load_limit: int
    load_percentage: float = Field(
        examples=[40.0], description="current_load / load_limit * 100; 0 when the limit is 0"
    )


class OperatorsLoad(BaseModel):
    operators: list[OperatorLoad]


class OperatorCount(BaseModel):
    operator_id: int
    name: str
    count: int


class SourceCount(BaseModel):
    source_id: int
    identifier: str
    count: int


class Distribution(BaseModel):
    """Counts of all interactions, any status; `by_operator` counts those that have it."""

    by_operator: list[OperatorCount]
    by_source: list[SourceCount]
    waiting_count: int
    overdue_count: int = Field(
        description="interactions that waited past their source's max_wait_s"
    )
    offered_count: int = Field(description="offered to an operator and not accepted yet")
