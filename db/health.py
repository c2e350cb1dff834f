"""Does the database answer? One probe for the worker's and the API's `/health`."""

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.session import begin_read_only

DATABASE_TIMEOUT_S = 3.0


async def database_answers(
    sessions: async_sessionmaker[AsyncSession], timeout_s: float = DATABASE_TIMEOUT_S
) -> bool:
    """`SELECT 1` in a read-only transaction within `timeout_s`: a hung database is down too."""
    try:
        async with asyncio.timeout(timeout_s), sessions() as session:
            await begin_read_only(session)
            await session.execute(text("SELECT 1"))
    except Exception:
        return False
    return True
