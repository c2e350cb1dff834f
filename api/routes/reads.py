"""The two reads every managed resource answers: the whole list, and one member or 404.

Each answers with the API's model of what it found; the rows are read in a transaction of
their own, and the answer is built once it has ended.
"""

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import SessionDep
from api.docs import errors


class Listing(Protocol):
    """A repository that can list its rows in id order."""

    def __init__(self, session: AsyncSession) -> None: ...

    async def list_all(self) -> Sequence[object]: ...


def add_read_routes(
    routes: APIRouter,
    noun: str,
    out: type[BaseModel],
    repository: Callable[[AsyncSession], Listing],
    read_member: Callable[..., Awaitable[object]],
) -> None:
    """`GET ""` (route `list_{noun}s`) and `GET "/{{noun}_id}"` (route `get_{noun}`).

    `read_member` is the resource's own dependency: it declares the `{noun}_id` path parameter,
    so the OpenAPI document and the 422 `loc`s name it as the resource does, and answers 404.
    FastAPI makes the routes' OpenAPI summaries and operation ids from their names.
    """

    async def list_rows(session: SessionDep) -> list[Any]:
        async with session.begin():
            rows = await repository(session).list_all()
        return [out.model_validate(row) for row in rows]

    async def get_row(found: Annotated[object, Depends(read_member)]) -> Any:
        return out.model_validate(found)

    every = list[out]  # type: ignore[valid-type]  # a model chosen at run time
    routes.add_api_route("", list_rows, methods=["GET"], response_model=every, name=f"list_{noun}s")
    routes.add_api_route(
        f"/{{{noun}_id}}",
        get_row,
        methods=["GET"],
        response_model=out,
        responses=errors(404),
        name=f"get_{noun}",
    )
