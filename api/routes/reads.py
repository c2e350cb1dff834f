"""Reads that answer with the API's model of what they found: the rows are read in a
transaction of their own, and the answer is built once it has ended."""

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

Out = TypeVar("Out", bound=BaseModel)


async def read_one(
    session: AsyncSession, row: Callable[[], Awaitable[object]], out: type[Out]
) -> Out:
    async with session.begin():
        found = await row()
    return out.model_validate(found)


async def read_all(
    session: AsyncSession, rows: Callable[[], Awaitable[Sequence[object]]], out: type[Out]
) -> list[Out]:
    async with session.begin():
        found = await rows()
    return [out.model_validate(row) for row in found]
