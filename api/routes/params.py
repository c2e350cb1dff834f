"""Path and query parameters shared by several routes."""

from typing import Annotated

from fastapi import Path, Query
from pydantic import BaseModel, Field

from schemas.fields import MAX_DB_INT

API_PREFIX = "/api/v1"
METRICS_PATH = "/metrics"  # needs the token too when API_TOKEN is set
HEALTH_PATH = "/health"  # open to any host and without a token

OperatorId = Annotated[int, Path(ge=1, le=MAX_DB_INT, examples=[3])]
SourceId = Annotated[int, Path(ge=1, le=MAX_DB_INT, examples=[1])]
InteractionId = Annotated[int, Path(ge=1, le=MAX_DB_INT, examples=[42])]
# A query string is text: "2" is the id 2 there (bodies use the strict `schemas.fields.DbId`).
QueryId = Annotated[int, Field(ge=1, le=MAX_DB_INT, examples=[1])]


class Page(BaseModel):
    limit: int = Field(100, ge=1, le=1000, description="at most this many rows")
    offset: int = Field(0, ge=0, le=MAX_DB_INT, description="rows to skip, in id order")


PageQuery = Annotated[Page, Query()]
