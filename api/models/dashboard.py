"""The supervisors' live page reads one snapshot: aggregates only, small with any queue length."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

WINDOWS_S = (300, 900, 3600, 86400)  # the windows the page offers for observed shares


def known_window(seconds: int) -> int:
    """A few fixed windows: every open page of one window shares one feed of snapshots."""
    if seconds not in WINDOWS_S:
        raise ValueError(f"window must be one of {', '.join(map(str, WINDOWS_S))} seconds")
    return seconds


WindowS = Annotated[int, AfterValidator(known_window)]


class DashboardOperator(BaseModel):
    id: int
    name: str
    active: bool
    current_load: int = Field(description="assigned and offered interactions: the routed counter")
    load_limit: int
    offered: int = Field(description="of current_load, offered and not yet accepted")
    assigned_last_hour: int = Field(
        description="interactions created and assigned to this operator in the last hour"
    )


class DashboardShare(BaseModel):
    operator_id: int
    weight: int | None = Field(description="configured weight; null when no longer configured")
    configured: float = Field(
        description="weight / sum of the source's weights of active operators (0..1)"
    )
    observed: int = Field(description="interactions of this source it got in the window")


class DashboardSource(BaseModel):
    id: int
    identifier: str
    max_wait_s: int | None = Field(description="waiting SLA; null when the source has none")
    waiting: int
    oldest_waiting_at: datetime | None = Field(description="created_at of its oldest waiting one")
    in_window: int = Field(description="its interactions created in the window, any status")
    shares: list[DashboardShare]


class DashboardFlow(BaseModel):
    seconds: int = Field(description="how far back the points go")
    points: list[tuple[int, int]] = Field(
        description="[unix second, interactions routed in it]; seconds without any are left out"
    )


class DashboardSnapshot(BaseModel):
    generated_at: datetime
    window_s: int = Field(description="the window of the observed shares, in seconds")
    broker: Literal["ok", "down"]
    dead_letters: int | None = Field(
        description="messages waiting in interactions.dead; null while the broker is down"
    )
    waiting_count: int
    operators: list[DashboardOperator]
    sources: list[DashboardSource]
    flow: DashboardFlow
