"""FastAPI dependencies: the app's resources, injected from `app.state` (no module globals)."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from api.state import ApiState
from api.unit import UnitOfWork


def get_state(request: Request) -> ApiState:
    state = request.app.state.api
    assert isinstance(state, ApiState)
    return state


StateDep = Annotated[ApiState, Depends(get_state)]


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    """One session per request, closed (and anything uncommitted rolled back) after it."""
    async with state.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def get_unit(state: StateDep, session: SessionDep) -> UnitOfWork:
    return UnitOfWork(state, session)


UnitDep = Annotated[UnitOfWork, Depends(get_unit)]
