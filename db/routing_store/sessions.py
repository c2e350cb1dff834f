"""The routing statements through SQLAlchemy's async session: PostgreSQL's worker, and the
API on any database. SQLAlchemy compiles each statement once per engine and dialect (its
compiled cache: the statements are module constants whose text does not vary per call)."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from db.routing_store.store import SqlRoutingStore
from db.statements.statement import Statement


class SessionStatements:
    """Statements on the session's connection, in its transaction; the caller commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session  # its `execute`, not its connection's: pending objects flush first

    async def rows(self, statement: Statement, params: Sequence[Any]) -> Sequence[Sequence[Any]]:
        result = await self.session.execute(
            statement.sql, dict(zip(statement.params, params, strict=True))
        )
        return result.all()

    async def execute(self, statement: Statement, params: Sequence[Any]) -> None:
        await self.session.execute(statement.sql, dict(zip(statement.params, params, strict=True)))

    async def execute_many(self, statement: Statement, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            names = statement.params
            await self.session.execute(
                statement.sql, [dict(zip(names, row, strict=True)) for row in rows]
            )


def session_store(session: AsyncSession) -> SqlRoutingStore:
    """The routing store of the session's current transaction."""
    return SqlRoutingStore(SessionStatements(session))
