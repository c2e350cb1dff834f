"""What `/health` answers."""

from typing import Literal

from pydantic import BaseModel


class Health(BaseModel):
    status: Literal["ok", "down"]
    database: Literal["ok", "down"]
    broker: Literal["ok", "down"]


class Root(BaseModel):
    """What `GET /` answers: the service is there, and where to go next."""

    status: Literal["ok"]
    message: str
