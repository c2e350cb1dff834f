"""What `/health` answers."""

from typing import Literal

from pydantic import BaseModel


class Health(BaseModel):
    status: Literal["ok", "down"]
    database: Literal["ok", "down"]
    broker: Literal["ok", "down"]
