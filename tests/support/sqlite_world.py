"""The router cases' `World` on the SQLite lane itself, in memory: the statements compiled
for sqlite3, each transaction driven through `db.sqlite_transactions.run_transaction` (the
runner's own seam, `run_to_completion`), no thread and no file. Fast enough for the unit
tests, so a store method that suspends, or a statement that disagrees with the other stores,
fails there first. Set-up and inspection are plain SQL, as an admin's writes would leave it."""

import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy.dialects import sqlite
from sqlalchemy.schema import CreateIndex, CreateTable

from db.models import Base
from db.routing_store.sqlite import CompiledStatements
from db.sqlite_transactions import run_transaction
from db.types import sqlite_time
from routing.store import RoutingStore
from schemas.events import InteractionStatus
from tests.support.router_cases import Row

T = TypeVar("T")
DIALECT = sqlite.dialect()


def in_memory_database() -> sqlite3.Connection:
    """The models' schema in a fresh in-memory database, as the lane connects to its file."""
    connection = sqlite3.connect(":memory:", isolation_level=None)
    connection.execute("PRAGMA foreign_keys=ON")
    for table in Base.metadata.sorted_tables:
        connection.execute(str(CreateTable(table).compile(dialect=DIALECT)))
        for index in table.indexes:
            connection.execute(str(CreateIndex(index).compile(dialect=DIALECT)))
    return connection


class SqliteWorld:
    def __init__(self, statements: CompiledStatements) -> None:
        self.db = in_memory_database()
        self.statements = statements

    def close(self) -> None:
        self.db.close()

    async def run(self, work: Callable[[RoutingStore], Awaitable[T]]) -> T:
        return run_transaction(self.db, self.statements, work)

    def _insert(self, sql: str, values: tuple[object, ...]) -> int:
        row_id = self.db.execute(sql, values).lastrowid
        assert row_id is not None
        return row_id

    async def add_source(
        self,
        identifier: str,
        sticky: bool = False,
        max_wait_s: int | None = None,
        accept_timeout_s: int | None = None,
    ) -> int:
        return self._insert(
            "INSERT INTO sources (identifier, description, sticky, max_wait_s, "
            "accept_timeout_s, created_at) VALUES (?, '', ?, ?, ?, ?)",
            (identifier, int(sticky), max_wait_s, accept_timeout_s, _now()),
        )

    async def add_operator(self, name: str, load_limit: int, active: bool = True) -> int:
        return self._insert(
            "INSERT INTO operators (name, active, load_limit, current_load, created_at) "
            "VALUES (?, ?, ?, 0, ?)",
            (name, int(active), load_limit, _now()),
        )

    async def set_weights(self, source_id: int, weights: dict[int, int]) -> None:
        self.db.execute("DELETE FROM source_operator_settings WHERE source_id = ?", (source_id,))
        self.db.executemany(
            "INSERT INTO source_operator_settings (source_id, operator_id, weight) "
            "VALUES (?, ?, ?)",
            [(source_id, operator, weight) for operator, weight in weights.items()],
        )

    async def interactions(self) -> list[Row]:
        rows = self.db.execute(
            "SELECT id, status, operator_id, is_active FROM interactions ORDER BY id"
        )
        return [Row(i, InteractionStatus(s), op, bool(a)) for i, s, op, a in rows]

    async def loads(self) -> dict[int, int]:
        return dict(self.db.execute("SELECT id, current_load FROM operators").fetchall())

    async def leads(self) -> dict[str, set[tuple[str, str]]]:
        found: dict[str, set[tuple[str, str]]] = {
            uuid: set() for (uuid,) in self.db.execute("SELECT uuid FROM leads")
        }
        for uuid, kind, value in self.db.execute(
            "SELECT lead_uuid, kind, value FROM lead_contacts"
        ):
            found[uuid].add((kind, value))
        return found

    async def lead_of(self) -> dict[int, str]:
        return dict(self.db.execute("SELECT id, lead_uuid FROM interactions").fetchall())


def _now() -> str | None:
    return sqlite_time(datetime.now(UTC))
