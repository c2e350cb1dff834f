"""The routing store in plain `sqlite3`, for the worker's SQLite transaction runner.

Its methods are coroutines that never suspend: the runner drives a whole routing transaction to
completion on its own thread, one hand-off per batch (see `db/sqlite_transactions.py`). Values are
written in the forms SQLAlchemy writes and reads on SQLite (naive UTC `DATETIME` text, JSON
text, 0/1), so the API's ORM reads these rows like its own.
"""

import functools
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from db.uuids import new_uuids
from routing.facts import InteractionFacts, OperatorState, StoredEvent

# Lists are bound as one JSON array (`IN (SELECT value FROM json_each(?))`), so a statement's
# text does not change with the batch and sqlite3's statement cache keeps it compiled.
JSON_LIST = "SELECT value FROM json_each(?)"
# Multi-row INSERTs, not `executemany`: the sqlite3 module releases and re-takes the GIL around
# every row it steps, and each re-take can wait a whole switch interval behind the busy event
# loop thread. Rows go in chunks of powers of two (37 = 32 + 4 + 1), so at most nine statement
# texts per table exist, all of them cached (compiling a 256-row INSERT costs 6x running it).
INSERT_CHUNK = 256
_FACTS = (
    "SELECT i.id, i.lead_uuid, l.email, i.source_id, i.operator_id, i.status, i.message_id, "
    "i.correlation_id, i.reply_to FROM interactions i JOIN leads l ON l.uuid = i.lead_uuid"
)
_FACT_NAMES = (
    "id, lead_uuid, email, source_id, operator_id, status, message_id, correlation_id, reply_to"
)
_INTERACTION_COLUMNS = (
    "id, lead_uuid, source_id, operator_id, status, is_active, payload, message_id, "
    "correlation_id, reply_to, created_at, assigned_at"
)
_EVENT_COLUMNS = "event_id, interaction_id, routing_key, body, correlation_id, reply_to, created_at"


@functools.lru_cache(maxsize=8)  # a batch writes one `now` into every row it touches
def sqlite_time(moment: datetime | None) -> str | None:
    """SQLAlchemy's SQLite `DATETIME` text for a UTC moment (stored naive, microseconds kept)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _marks(count: int) -> str:
    return ",".join("?" * count)


def _json_list(values: Iterable[Any]) -> str:
    return json.dumps(sorted(set(values)))


def _power_of_two_chunks(count: int, largest: int) -> Iterator[tuple[int, int]]:
    """(start, size) covering `count` rows with sizes that are powers of two, at most
    `largest` (rounded down to one), largest first."""
    start, size = 0, 1 << (max(1, largest).bit_length() - 1)
    while start < count:
        while size > count - start:
            size //= 2
        yield start, size
        start += size


class SqliteRoutingStore:
    """Statements on the runner's connection, inside the transaction the runner began."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.db = connection

    def _insert(self, into: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """`INSERT INTO {into} VALUES (...), (...), ...`, a few statements per batch, each within
        this SQLite's limit on bound variables (32,766 since 3.32, 999 before)."""
        if not rows:
            return
        width = len(rows[0])
        largest = min(INSERT_CHUNK, self.db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width)
        for start, size in _power_of_two_chunks(len(rows), largest):
            chunk = rows[start : start + size]
            values = ",".join([f"({_marks(width)})"] * size)
            self.db.execute(f"INSERT INTO {into} VALUES {values}", [v for r in chunk for v in r])

    def _rows_in(self, sql: str, values: Iterable[Any], columns: str) -> list[Any]:
        """`sql` with `{}` standing for the list of an `IN (...)`."""
        listed = _json_list(values)
        return [] if listed == "[]" else self._select(sql.format(JSON_LIST), [listed], columns)

    def _select(self, sql: str, params: Sequence[Any], columns: str) -> list[Any]:
        """The rows of `sql` (its `columns`), fetched as one JSON array in a single row.

        The sqlite3 module gives up the GIL for every row it steps, and on the runner's thread
        each re-take can wait a switch interval behind the busy event loop: one row, one wait.
        """
        wrapped = f"SELECT json_group_array(json_array({columns})) FROM ({sql})"
        rows: list[Any] = json.loads(self.db.execute(wrapped, params).fetchone()[0])
        return rows

    async def sources_served_by(self, operator_ids: Iterable[int]) -> set[int]:
        sql = "SELECT source_id FROM source_operator_settings WHERE operator_id IN ({})"
        return {row[0] for row in self._rows_in(sql, operator_ids, "source_id")}

    async def weights_of_sources(
        self, source_ids: Iterable[int]
    ) -> tuple[set[int], list[tuple[int, int, int]]]:
        sql = (
            "SELECT s.id, w.operator_id, w.weight FROM sources s "
            "LEFT JOIN source_operator_settings w ON w.source_id = s.id WHERE s.id IN ({})"
        )
        rows = self._rows_in(sql, source_ids, "id, operator_id, weight")
        weights = [(s, o, w) for s, o, w in rows if o is not None and w is not None]
        return {row[0] for row in rows}, weights

    async def lock_states(self, operator_ids: Iterable[int]) -> dict[int, OperatorState]:
        """No row locks on SQLite: the runner's BEGIN IMMEDIATE already holds the write lock."""
        sql = "SELECT id, active, load_limit, current_load FROM operators WHERE id IN ({})"
        rows = self._rows_in(sql, operator_ids, "id, active, load_limit, current_load")
        return {i: OperatorState(i, bool(active), limit, load) for i, active, limit, load in rows}

    async def add_to_loads(self, deltas: Mapping[int, int]) -> None:
        self.db.executemany(
            "UPDATE operators SET current_load = current_load + ? WHERE id = ?",
            [(delta, op) for op, delta in deltas.items() if delta],
        )

    async def ids_by_message_id(self, message_ids: Iterable[str]) -> dict[str, int]:
        sql = "SELECT message_id, id FROM interactions WHERE message_id IN ({})"
        return {str(m): i for m, i in self._rows_in(sql, message_ids, "message_id, id")}

    async def facts(self, interaction_ids: Iterable[int]) -> dict[int, InteractionFacts]:
        rows = self._rows_in(_FACTS + " WHERE i.id IN ({})", interaction_ids, _FACT_NAMES)
        return {row[0]: InteractionFacts(*row) for row in rows}

    async def oldest_waiting(
        self, source_ids: Iterable[int], after_id: int, limit: int
    ) -> list[InteractionFacts]:
        sql = (
            f"{_FACTS} WHERE i.status = 'waiting' AND i.source_id IN ({JSON_LIST}) "
            "AND i.id > ? ORDER BY i.id LIMIT ?"
        )
        rows = self._select(sql, (_json_list(source_ids), after_id, limit), _FACT_NAMES)
        return [InteractionFacts(*row) for row in rows]

    async def upsert_leads(self, emails: Iterable[str]) -> dict[str, str]:
        """Known leads read, the rest inserted: the write lock rules out a racing insert."""
        wanted = set(emails)
        sql = "SELECT email, uuid FROM leads WHERE email IN ({})"
        found = dict(self._rows_in(sql, wanted, "email, uuid"))
        missing = sorted(wanted - found.keys())
        fresh = dict(zip(missing, new_uuids(len(missing)), strict=True))
        if fresh:
            now = sqlite_time(datetime.now(UTC))
            rows = [(lead_uuid, email, now) for email, lead_uuid in fresh.items()]
            self._insert("leads (uuid, email, created_at)", rows)
        return found | fresh

    async def insert_interactions(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Ids after the current maximum: nobody else can insert while the runner holds the lock."""
        top = self.db.execute("SELECT coalesce(max(id), 0) FROM interactions").fetchone()[0]
        ids = list(range(top + 1, top + 1 + len(rows)))
        values = [_interaction_values(i, row) for i, row in zip(ids, rows, strict=True)]
        self._insert(f"interactions ({_INTERACTION_COLUMNS})", values)
        return ids

    async def set_closed(self, interaction_ids: Iterable[int], now: datetime) -> None:
        at = sqlite_time(now)
        self.db.executemany(
            "UPDATE interactions SET status = 'closed', is_active = 0, closed_at = ? WHERE id = ?",
            [(at, i) for i in interaction_ids],
        )

    async def set_assigned(self, assignments: Mapping[int, int], now: datetime) -> None:
        at = sqlite_time(now)
        self.db.executemany(
            "UPDATE interactions SET operator_id = ?, status = 'assigned', assigned_at = ? "
            "WHERE id = ?",
            [(op, at, i) for i, op in assignments.items()],
        )

    async def first_events(self, interaction_ids: Iterable[int]) -> dict[int, StoredEvent]:
        return self._events_where(interaction_ids, "")

    async def closed_events(self, interaction_ids: Iterable[int]) -> dict[int, StoredEvent]:
        return self._events_where(interaction_ids, " AND routing_key = 'interaction.closed'")

    def _events_where(
        self, interaction_ids: Iterable[int], condition: str
    ) -> dict[int, StoredEvent]:
        """Per interaction, its first event (that matches `condition`)."""
        sql = (
            "SELECT interaction_id, event_id, routing_key, body FROM outbox_events WHERE id IN "
            "(SELECT min(id) FROM outbox_events WHERE interaction_id IN ({})"
            + condition  # a constant without braces, so `.format` leaves it alone
            + " GROUP BY interaction_id)"
        )
        rows = self._rows_in(sql, interaction_ids, "interaction_id, event_id, routing_key, body")
        return {row[0]: StoredEvent(*row) for row in rows}

    async def add_events(self, rows: Sequence[dict[str, Any]]) -> None:
        self._insert(f"outbox_events ({_EVENT_COLUMNS})", [_event_values(row) for row in rows])

    async def mark_published(self, event_ids: Iterable[str], now: datetime) -> None:
        listed = _json_list(event_ids)
        if listed != "[]":
            self.db.execute(
                "UPDATE outbox_events SET published_at = ? "
                f"WHERE event_id IN ({JSON_LIST}) AND published_at IS NULL",
                (sqlite_time(now), listed),
            )


def _interaction_values(interaction_id: int, row: Mapping[str, Any]) -> tuple[Any, ...]:
    payload = row["payload"]
    return (
        interaction_id,
        row["lead_uuid"],
        row["source_id"],
        row["operator_id"],
        row["status"],
        1 if row["is_active"] else 0,
        None if payload is None else json.dumps(payload),
        row["message_id"],
        row["correlation_id"],
        row["reply_to"],
        sqlite_time(row["created_at"]),
        sqlite_time(row["assigned_at"]),
    )


def _event_values(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return (
        row["event_id"],
        row["interaction_id"],
        row["routing_key"],
        row["body"],
        row["correlation_id"],
        row["reply_to"],
        sqlite_time(row["created_at"]),
    )
