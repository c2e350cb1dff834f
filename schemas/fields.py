"""Field types every edge shares (AMQP bodies and HTTP bodies alike).

Numbers are strict: JSON `true`, `"50"` and `50.0` are not integers, so a careless bot's
boolean can never become id 1. Ids are bounded to PostgreSQL's `integer`, so an absurd id is
refused at the edge, never a database error.
"""

from typing import Annotated

from pydantic import Field, StrictInt

MAX_DB_INT = 2**31 - 1

DbId = Annotated[StrictInt, Field(ge=1, le=MAX_DB_INT, examples=[1])]
LoadLimit = Annotated[StrictInt, Field(ge=0, le=1_000_000, examples=[5])]
Weight = Annotated[StrictInt, Field(ge=1, le=100, examples=[50])]
Priority = Annotated[StrictInt, Field(ge=0, le=9, examples=[0])]
