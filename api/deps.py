"""FastAPI dependencies: the app's resources, injected from `app.state` (no module globals)."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from api.state import ApiState
from api.unit import UnitOfWork
from messaging import tracing


def get_state(request: Request) -> ApiState:
    state = request.app.state.api
    assert isinstance(state, ApiState)
    return state


StateDep = Annotated[ApiState, Depends(get_state)]


async def get_session(request: Request, state: StateDep) -> AsyncIterator[AsyncSession]:
    """One session per request, closed (and anything uncommitted rolled back) after it.

    GET requests read without taking SQLite's write lock, which the worker's batches need.
    """
    factory = state.read_sessions if request.method == "GET" else state.sessions
    async with factory() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def get_unit(request: Request, state: StateDep, session: SessionDep) -> UnitOfWork:
    traceparent = tracing.parse_traceparent(request.headers.get(tracing.TRACEPARENT))
    return UnitOfWork(state, session, traceparent)


UnitDep = Annotated[UnitOfWork, Depends(get_unit)]
