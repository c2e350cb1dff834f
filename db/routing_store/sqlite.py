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
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any

from db.types import sqlite_time
from routing.facts import (
    InteractionFacts,
    OperatorState,
    SourceRules,
    StoredEvent,
    WaitingCursor,
    source_rules,
)
from routing.identity import SHOWN_CONTACTS, KnownLead, LeadContacts, LeadMerge
from routing.rows import NewContact, NewInteraction, NewLead, Offer, OutboxRow
from schemas.contacts import Contact, ContactKind
from schemas.events import EventType, InteractionStatus

# Lists are bound as one JSON array (`IN (SELECT value FROM json_each(?))`), so a statement's
# text does not change with the batch and sqlite3's statement cache keeps it compiled.
JSON_LIST = "SELECT value FROM json_each(?)"
# Multi-row INSERTs, not `executemany`: the sqlite3 module releases and re-takes the GIL around
# every row it steps, and each re-take can wait a whole switch interval behind the busy event
# loop thread. Rows go in chunks of powers of two (37 = 32 + 4 + 1), so at most nine statement
# texts per table exist, all of them cached (compiling a 256-row INSERT costs more than
# running it: bench/README.md).
INSERT_CHUNK = 256


def _names(row_type: type[Any]) -> tuple[str, ...]:
    """A dataclass's fields, in order: the columns it is read from."""
    return tuple(f.name for f in fields(row_type))


# Column lists come from the row types, so a statement and the row it fills cannot disagree
# on order; `tests/unit/test_sqlite_rows.py` checks them against the models.
_FACT_NAMES = _names(InteractionFacts)
_FACT_COLUMNS = ", ".join(_FACT_NAMES)
_FACTS = (
    "SELECT "
    + ", ".join(("l." if name in SHOWN_CONTACTS else "i.") + name for name in _FACT_NAMES)
    + " FROM interactions i JOIN leads l ON l.uuid = i.lead_uuid"
)
_STATUS_AT = _FACT_NAMES.index("status")

# A dict lookup turns stored text into the enum at a fraction of the enum call's cost.
_STATUS = {status.value: status for status in InteractionStatus}
_OPERATOR_COLUMNS = ", ".join(_names(OperatorState))
_ACTIVE_AT = _names(OperatorState).index("active")
_EVENT_COLUMNS = ", ".join(_names(StoredEvent))
INTERACTION_COLUMNS = ("id", *NewInteraction._fields)
OUTBOX_COLUMNS = OutboxRow._fields
_WAITING, _ASSIGNED, _CLOSED, _OFFERED = (
    InteractionStatus.WAITING.value,
    InteractionStatus.ASSIGNED.value,
    InteractionStatus.CLOSED.value,
    InteractionStatus.OFFERED.value,
)


_ABOVE_ANY_PRIORITY = 10  # priorities are 0..9: a cursor before the first waiting interaction


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

    def _insert(self, table: str, columns: Sequence[str], values: list[Any]) -> None:
        """`INSERT INTO table (columns) VALUES (...), (...), ...` of `values`, the rows' values
        one after the other: a few statements per batch, each within this SQLite's limit on
        bound variables (32,766 since 3.32, 999 before). Flat, so a chunk is one slice."""
        width = len(columns)
        count = len(values) // width
        if not count:
            return
        largest = min(INSERT_CHUNK, self.db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width)
        for start, size in _power_of_two_chunks(count, largest):
            chunk = values if size == count else values[start * width : (start + size) * width]
            self.db.execute(_insert_sql(table, tuple(columns), size), chunk)

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

    async def source_rules(self, source_ids: Iterable[int]) -> SourceRules:
        sql = (
            "SELECT s.id, s.sticky, s.accept_timeout_s, w.operator_id, w.weight FROM sources s "
            "LEFT JOIN source_operator_settings w ON w.source_id = s.id WHERE s.id IN ({})"
        )
        rows = self._rows_in(sql, source_ids, "id, sticky, accept_timeout_s, operator_id, weight")
        return source_rules(rows)

    async def last_operators(self, lead_uuids: Iterable[str]) -> dict[str, int | None]:
        sql = (
            "SELECT lead_uuid, operator_id FROM interactions WHERE id IN "
            "(SELECT max(id) FROM interactions WHERE lead_uuid IN ({}) GROUP BY lead_uuid)"
        )
        return dict(self._rows_in(sql, lead_uuids, "lead_uuid, operator_id"))

    async def lock_states(self, operator_ids: Iterable[int]) -> dict[int, OperatorState]:
        """No row locks on SQLite: the runner's BEGIN IMMEDIATE already holds the write lock."""
        sql = f"SELECT {_OPERATOR_COLUMNS} FROM operators WHERE id IN ({{}})"
        rows = self._rows_in(sql, operator_ids, _OPERATOR_COLUMNS)
        return {row[0]: _operator_state(row) for row in rows}

    async def add_to_loads(self, deltas: Mapping[int, int]) -> None:
        self.db.executemany(
            "UPDATE operators SET current_load = current_load + ? WHERE id = ?",
            [(delta, op) for op, delta in deltas.items() if delta],
        )

    async def ids_by_message_id(self, message_ids: Iterable[str]) -> dict[str, int]:
        sql = "SELECT message_id, id FROM interactions WHERE message_id IN ({})"
        return {str(m): i for m, i in self._rows_in(sql, message_ids, "message_id, id")}

    async def facts(
        self, interaction_ids: Iterable[int], *, lock: bool = False
    ) -> dict[int, InteractionFacts]:
        """`lock` changes nothing: the runner's BEGIN IMMEDIATE holds the write lock."""
        rows = self._rows_in(_FACTS + " WHERE i.id IN ({})", interaction_ids, _FACT_COLUMNS)
        return {row[0]: _facts(row) for row in rows}

    async def set_sequences(self, last: Mapping[int, int]) -> None:
        self.db.executemany(
            "UPDATE interactions SET last_sequence = ? WHERE id = ?",
            [(n, i) for i, n in last.items()],
        )

    async def next_waiting(
        self, source_ids: Iterable[int], after: WaitingCursor | None, limit: int
    ) -> list[InteractionFacts]:
        # The status is a literal, not a parameter: SQLite uses a partial index only for a
        # WHERE that implies the index's own (`status = 'waiting'`).
        priority, after_id = after if after is not None else (_ABOVE_ANY_PRIORITY, 0)
        sql = (
            f"{_FACTS} WHERE i.status = '{_WAITING}' AND i.source_id IN ({JSON_LIST}) "
            "AND (i.priority < ? OR (i.priority = ? AND i.id > ?)) "
            "ORDER BY i.priority DESC, i.id LIMIT ?"
        )
        params = (_json_list(source_ids), priority, priority, after_id, limit)
        return [_facts(row) for row in self._select(sql, params, _FACT_COLUMNS)]

    async def leads_of(
        self, contacts: Iterable[Contact], *, lock: bool = False
    ) -> tuple[dict[Contact, str], dict[str, KnownLead]]:
        """No row locks on SQLite (`lock` changes nothing): the runner's BEGIN IMMEDIATE
        already holds the write lock, so what is read stays true until the commit. One indexed
        statement per kind present (the unique index is on kind, value), the lead joined in."""
        by_kind: dict[ContactKind, list[str]] = {}
        for contact in contacts:
            by_kind.setdefault(contact.kind, []).append(contact.value)
        owners: dict[Contact, str] = {}
        leads: dict[str, KnownLead] = {}
        for kind, values in by_kind.items():
            sql = (
                "SELECT c.value, l.uuid, l.created_at, l.email, l.phone, l.handle "
                "FROM lead_contacts c JOIN leads l ON l.uuid = c.lead_uuid "
                f"WHERE c.kind = '{kind.value}' AND c.value IN ({{}})"
            )
            columns = "value, uuid, created_at, email, phone, handle"
            for value, uuid, created_at, email, phone, handle in self._rows_in(
                sql, values, columns
            ):
                owners[Contact(kind, value)] = uuid
                if uuid not in leads:
                    shown = LeadContacts(email, phone, handle)
                    leads[uuid] = KnownLead(uuid, _utc(created_at), shown)
        return owners, leads

    async def insert_leads(self, rows: Sequence[NewLead]) -> None:
        values = [v for row in rows for v in (*row[:-1], sqlite_time(row.created_at))]
        self._insert("leads", NewLead._fields, values)

    async def insert_contacts(self, rows: Sequence[NewContact]) -> None:
        values = [v for row in rows for v in (*row[:-1], sqlite_time(row.created_at))]
        self._insert("lead_contacts", NewContact._fields, values)

    async def show_contacts(self, shown: Mapping[str, LeadContacts]) -> None:
        self.db.executemany(
            "UPDATE leads SET email = ?, phone = ?, handle = ? WHERE uuid = ?",
            [(c.email, c.phone, c.handle, uuid) for uuid, c in shown.items()],
        )

    async def merge_leads(self, merges: Sequence[LeadMerge]) -> None:
        moves = [(m.survivor, merged) for m in merges for merged in m.merged]
        for table in ("lead_contacts", "interactions"):
            self.db.executemany(f"UPDATE {table} SET lead_uuid = ? WHERE lead_uuid = ?", moves)
        self.db.executemany("DELETE FROM leads WHERE uuid = ?", [(old,) for _, old in moves])

    async def advance_lead_sequences(self, counts: Mapping[str, int]) -> dict[str, int]:
        self.db.executemany(
            "UPDATE leads SET last_sequence = last_sequence + ? WHERE uuid = ?",
            [(n, u) for u, n in counts.items()],
        )
        sql = "SELECT uuid, last_sequence FROM leads WHERE uuid IN ({})"
        rows = self._rows_in(sql, counts, "uuid, last_sequence")
        return {str(uuid): int(n) for uuid, n in rows}

    async def insert_interactions(self, rows: Sequence[NewInteraction]) -> list[int]:
        """Ids after the current maximum: nobody else can insert while the runner holds the lock."""
        top = self.db.execute("SELECT coalesce(max(id), 0) FROM interactions").fetchone()[0]
        ids = list(range(top + 1, top + 1 + len(rows)))
        self._insert("interactions", INTERACTION_COLUMNS, interaction_values(ids, rows))
        return ids

    async def overdue_waiting(self, now: datetime, limit: int) -> list[InteractionFacts]:
        slas = self.db.execute(
            "SELECT id, max_wait_s FROM sources WHERE max_wait_s IS NOT NULL"
        ).fetchall()
        if not slas:
            return []
        late = " OR ".join(["(i.source_id = ? AND i.created_at < ?)"] * len(slas))
        params: list[Any] = [
            v
            for source_id, wait in slas
            for v in (source_id, sqlite_time(now - timedelta(seconds=wait)))
        ]
        sql = (
            f"{_FACTS} WHERE i.status = '{_WAITING}' AND i.overdue_at IS NULL AND ({late}) "
            "ORDER BY i.id LIMIT ?"
        )
        return [_facts(row) for row in self._select(sql, [*params, limit], _FACT_COLUMNS)]

    async def set_overdue(self, interaction_ids: Iterable[int], now: datetime) -> None:
        self.db.executemany(
            "UPDATE interactions SET overdue_at = ? WHERE id = ? AND overdue_at IS NULL",
            [(sqlite_time(now), i) for i in interaction_ids],
        )

    async def set_closed(self, interaction_ids: Iterable[int], now: datetime) -> None:
        at = sqlite_time(now)
        self.db.executemany(
            f"UPDATE interactions SET status = '{_CLOSED}', is_active = 0, closed_at = ?, "
            "offer_expires_at = NULL WHERE id = ?",
            [(at, i) for i in interaction_ids],
        )

    async def set_assigned(self, assignments: Mapping[int, int], now: datetime) -> None:
        at = sqlite_time(now)
        self.db.executemany(
            f"UPDATE interactions SET operator_id = ?, status = '{_ASSIGNED}', assigned_at = ?, "
            "offer_expires_at = NULL WHERE id = ?",
            [(op, at, i) for i, op in assignments.items()],
        )

    async def set_offered(self, offers: Mapping[int, Offer], now: datetime) -> None:
        at = sqlite_time(now)
        self.db.executemany(
            f"UPDATE interactions SET operator_id = ?, status = '{_OFFERED}', assigned_at = ?, "
            "offer_expires_at = ? WHERE id = ?",
            [(o.operator_id, at, sqlite_time(o.expires_at), i) for i, o in offers.items()],
        )

    async def due_offers(self, now: datetime, limit: int) -> list[InteractionFacts]:
        sql = (
            f"{_FACTS} WHERE i.status = '{_OFFERED}' AND i.offer_expires_at <= ? "
            "ORDER BY i.offer_expires_at, i.id LIMIT ?"
        )
        params = (sqlite_time(now), limit)
        return [_facts(row) for row in self._select(sql, params, _FACT_COLUMNS)]

    async def offer_deadlines(self, interaction_ids: Iterable[int]) -> dict[int, datetime]:
        sql = (
            "SELECT id, offer_expires_at FROM interactions WHERE id IN ({}) "
            f"AND status = '{_OFFERED}' AND offer_expires_at IS NOT NULL"
        )
        rows = self._rows_in(sql, interaction_ids, "id, offer_expires_at")
        return {i: _utc(at) for i, at in rows}

    async def withdraw_offers(self, expired: Mapping[int, int], now: datetime) -> None:
        self.db.executemany(
            f"UPDATE interactions SET operator_id = NULL, status = '{_WAITING}', "
            "assigned_at = NULL, offer_expires_at = NULL WHERE id = ?",
            [(i,) for i in expired],
        )
        at = sqlite_time(now)
        values = [v for i, op in expired.items() for v in (i, op, at)]
        self._insert("expired_offers", ("interaction_id", "operator_id", "expired_at"), values)

    async def expired_operators(self, interaction_ids: Iterable[int]) -> dict[int, set[int]]:
        sql = "SELECT interaction_id, operator_id FROM expired_offers WHERE interaction_id IN ({})"
        found: dict[int, set[int]] = {}
        for interaction_id, operator_id in self._rows_in(
            sql, interaction_ids, "interaction_id, operator_id"
        ):
            found.setdefault(interaction_id, set()).add(operator_id)
        return found

    async def first_events(self, interaction_ids: Iterable[int]) -> dict[int, StoredEvent]:
        return self._events_where(interaction_ids, "")

    async def events_of_type(
        self, interaction_ids: Iterable[int], event_type: EventType
    ) -> dict[int, StoredEvent]:
        condition = f" AND routing_key = '{EventType(event_type).value}'"  # a known constant
        return self._events_where(interaction_ids, condition)

    def _events_where(
        self, interaction_ids: Iterable[int], condition: str
    ) -> dict[int, StoredEvent]:
        """Per interaction, its first event (that matches `condition`)."""
        sql = (
            f"SELECT {_EVENT_COLUMNS} FROM outbox_events WHERE id IN "
            "(SELECT min(id) FROM outbox_events WHERE interaction_id IN ({})"
            + condition  # a constant without braces, so `.format` leaves it alone
            + " GROUP BY interaction_id)"
        )
        rows = self._rows_in(sql, interaction_ids, _EVENT_COLUMNS)
        return {row[0]: StoredEvent(*row) for row in rows}

    async def add_events(self, rows: Sequence[OutboxRow]) -> None:
        self._insert("outbox_events", OUTBOX_COLUMNS, outbox_values(rows))

    async def record_published(self, event_ids: Iterable[str], now: datetime) -> None:
        listed = _json_list(event_ids)
        if listed != "[]":
            self.db.execute(
                "UPDATE outbox_events SET published_at = ? "
                f"WHERE event_id IN ({JSON_LIST}) AND published_at IS NULL",
                (sqlite_time(now), listed),
            )


@functools.lru_cache(maxsize=64)
def _insert_sql(table: str, columns: tuple[str, ...], rows: int) -> str:
    """The text of a `rows`-row INSERT, built once (sqlite3 caches its compiled form)."""
    marks = ",".join([f"({_marks(len(columns))})"] * rows)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {marks}"


# Rows read come as fresh lists from `json.loads`: the few values JSON cannot carry as Python
# does are fixed in place, by the position their field has.
def _facts(row: list[Any]) -> InteractionFacts:
    row[_STATUS_AT] = _STATUS[row[_STATUS_AT]]
    return InteractionFacts(*row)


def _utc(stored: str) -> datetime:
    return datetime.fromisoformat(stored).replace(tzinfo=UTC)


def _operator_state(row: list[Any]) -> OperatorState:
    row[_ACTIVE_AT] = bool(row[_ACTIVE_AT])  # stored as 0/1
    return OperatorState(*row)


# The hot path: one flat list per batch, each row's values written out in its row type's field
# order (the INSERT's column order), plain `str` and `int` where the row holds an enum or a
# bool (sqlite3 binds those several times slower), JSON and UTC moments as the ORM writes them.
def interaction_values(ids: Sequence[int], rows: Sequence[NewInteraction]) -> list[Any]:
    """The values of `INTERACTION_COLUMNS` for these rows, one row after the other."""
    values: list[Any] = []
    extend, dumps, time, text = values.extend, json.dumps, sqlite_time, str
    for interaction_id, row in zip(ids, rows, strict=True):
        payload = row.payload
        extend(
            (
                interaction_id,
                row.lead_uuid,
                row.source_id,
                row.operator_id,
                text(row.status),
                1 if row.is_active else 0,
                None if payload is None else dumps(payload),
                row.message_id,
                row.correlation_id,
                row.reply_to,
                time(row.created_at),
                time(row.assigned_at),
                row.priority,
                time(row.offer_expires_at),
            )
        )
    return values


def outbox_values(rows: Sequence[OutboxRow]) -> list[Any]:
    """The values of `OUTBOX_COLUMNS` for these rows, one row after the other."""
    values: list[Any] = []
    extend, time = values.extend, sqlite_time
    for row in rows:
        extend(
            (
                row.event_id,
                row.interaction_id,
                row.routing_key,
                row.body,
                row.correlation_id,
                row.reply_to,
                time(row.created_at),
                row.traceparent,
                row.owner,
            )
        )
    return values
