"""`/health`: open (no prefix, no token), says whether the database and the broker answer."""

import asyncio

from fastapi import APIRouter, Response
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.deps import StateDep
from api.models.health import Health

router = APIRouter(tags=["health"])
DATABASE_CHECK_TIMEOUT_S = 3.0


async def database_ok(engine: AsyncEngine) -> bool:
    try:
        async with asyncio.timeout(DATABASE_CHECK_TIMEOUT_S), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
async def health(state: StateDep, response: Response) -> Health:
    """200 while the database answers (the broker may be down: the API still serves reads)."""
    database = await database_ok(state.engine)
    if not database:
        response.status_code = 503
    return Health(
        status="ok" if database else "error",
        database="ok" if database else "down",
        broker="ok" if state.broker.is_up else "down",
    )
