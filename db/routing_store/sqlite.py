"""The routing statements as text for plain `sqlite3`, compiled once at start-up.

The SQLite worker runs a batch's whole transaction on one thread of its own
(`db/sqlite_transactions.py`); SQLAlchemy's per-statement and per-row work there cost more
than SQLite's own. So each statement of `db/statements/` is compiled once for SQLite, and
kept with the order of its placeholders and how each value is bound and read:

- values are bound in the forms SQLAlchemy writes on SQLite (naive UTC `DATETIME` text, JSON
  text, 0/1, an enum's value), through fast converters that `tests/unit/test_sqlite_statements.py`
  checks against SQLAlchemy's own;
- a SELECT comes back as one row holding a JSON array of its rows, and an INSERT of many rows
  is one multi-row `VALUES` statement per chunk: the sqlite3 module releases the GIL for every
  row it steps, and on the runner's thread each re-take can wait a whole switch interval
  behind the busy event loop (bench/README.md, "Why the GIL mattered").
"""

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import JSON, Boolean
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.types import TypeEngine

from db.routing_store.store import SqlRoutingStore
from db.statements import all_statements
from db.statements.dialect import Listed, json_list
from db.statements.statement import Statement
from db.types import StatusText, UTCDateTime, sqlite_time
from schemas.events import InteractionStatus

Converter = Callable[[Any], Any]
DIALECT = sqlite.dialect()
# Rows of an INSERT go in chunks of powers of two (37 = 32 + 4 + 1), so at most nine texts per
# table exist, all of them in sqlite3's statement cache (compiling a 256-row INSERT costs
# more than running it: bench/README.md).
INSERT_CHUNK = 256

_STATUS = {status.value: status for status in InteractionStatus}  # faster than the enum call


def _bool_in(value: Any) -> Any:
    return None if value is None else (1 if value else 0)


def _json_in(value: Any) -> Any:
    return None if value is None else json.dumps(value)


_STATUS_TEXT = {status.value: status.value for status in InteractionStatus}  # enum or text


def _status_in(value: Any) -> Any:
    return None if value is None else _STATUS_TEXT[value]


def _utc_out(stored: Any) -> Any:
    return None if stored is None else datetime.fromisoformat(stored).replace(tzinfo=UTC)


def _bool_out(stored: Any) -> Any:
    return None if stored is None else bool(stored)


def _status_out(stored: Any) -> Any:
    return None if stored is None else _STATUS[stored]


def bind_converter(type_: TypeEngine[Any]) -> Converter | None:
    """How a value of this column type is bound on SQLite; None: as it is."""
    if isinstance(type_, UTCDateTime):
        return sqlite_time
    if isinstance(type_, Listed):
        return json_list
    if isinstance(type_, StatusText):
        return _status_in
    if isinstance(type_, Boolean):
        return _bool_in
    if isinstance(type_, JSON):
        return _json_in
    processor: Converter | None = type_._cached_bind_processor(DIALECT)
    return processor


def result_converter(type_: TypeEngine[Any]) -> Converter | None:
    """How a stored value of this column type is read; None: as JSON gives it."""
    if isinstance(type_, UTCDateTime):
        return _utc_out
    if isinstance(type_, StatusText):
        return _status_out
    if isinstance(type_, Boolean):
        return _bool_out
    if isinstance(type_, JSON):
        return lambda stored: None if stored is None else json.loads(stored)
    return None


Slot = tuple[int, Converter | None, Any]


@dataclass
class CompiledStatement:
    """A statement's SQLite text, and per placeholder where its value comes from (`slots`):
    the caller's parameter at `index` through `convert`, or (index -1) a constant of the
    statement itself, already converted."""

    name: str
    sql: str
    slots: tuple[Slot, ...]
    results: tuple[tuple[int, Converter], ...] = ()  # result columns that need converting
    bind: Callable[[Sequence[Any]], tuple[Any, ...]] = field(init=False)
    bind_rows: Callable[[Sequence[Sequence[Any]]], list[Any]] = field(init=False)
    _inserts: dict[int, str] = field(default_factory=dict)  # rows -> multi-row INSERT text

    def __post_init__(self) -> None:
        self.bind, self.bind_rows = _binders(self.name, self.slots)

    def read(self, rows: list[list[Any]]) -> list[list[Any]]:
        for column, convert in self.results:
            for row in rows:
                row[column] = convert(row[column])
        return rows

    def insert_sql(self, rows: int) -> str:
        """The text of a `rows`-row INSERT: the compiled one's VALUES group repeated."""
        sql = self._inserts.get(rows)
        if sql is None:
            head, _, group = self.sql.partition(" VALUES ")
            sql = self._inserts[rows] = f"{head} VALUES {', '.join([group] * rows)}"
        return sql


def _binders(
    name: str, slots: Sequence[Slot]
) -> tuple[
    Callable[[Sequence[Any]], tuple[Any, ...]], Callable[[Sequence[Sequence[Any]]], list[Any]]
]:
    """Functions that put parameters into the placeholders' order, converted: `bind` for one
    set of them, `bind_rows` for many rows, flat (a multi-row INSERT's values). Generated as
    source once per statement, the way `namedtuple` builds its classes: an expression per
    placeholder, no loop over the slots per row (this is the lane's hot path)."""
    namespace: dict[str, Any] = {}
    values = []
    for n, (index, convert, constant) in enumerate(slots):
        if index < 0:
            namespace[f"k{n}"] = constant
            values.append(f"k{n}")
        elif convert is None:
            values.append(f"p[{index}]")
        else:
            namespace[f"c{n}"] = convert
            values.append(f"c{n}(p[{index}])")
    listed = "".join(f"{v}, " for v in values)
    source = (
        f"def bind(p):\n    return ({listed})\n"
        "def bind_rows(rows):\n    out = []\n    extend = out.extend\n"
        f"    for p in rows:\n        extend(({listed}))\n    return out\n"
    )
    exec(compile(source, f"<sqlite binders of {name}>", "exec"), namespace)
    return namespace["bind"], namespace["bind_rows"]


def compile_statement(statement: Statement) -> CompiledStatement:
    keys = list(statement.params) if statement.inserts_rows else None
    compiled = cast(
        SQLCompiler, cast(ClauseElement, statement.sql).compile(dialect=DIALECT, column_keys=keys)
    )
    position = {name: n for n, name in enumerate(statement.params)}
    defaults = _insert_defaults(statement, compiled)
    slots = []
    for name in compiled.positiontup or ():
        bind = compiled.binds[name]
        convert = bind_converter(bind.type)
        if name in position:
            slots.append((position[name], convert, None))
        else:  # a value the statement fixes (the OFFSET SQLite needs after a LIMIT, a default)
            value = defaults.get(name, bind.effective_value)
            slots.append((-1, None, value if convert is None else convert(value)))
    if missing := position.keys() - set(compiled.positiontup or ()):
        raise ValueError(f"{statement.name}: parameters {sorted(missing)} are not in its text")
    sql = compiled.string
    results: tuple[tuple[int, Converter], ...] = ()
    if statement.returns_rows:
        columns = _selected_types(statement)
        names = [f"c{n}" for n in range(len(columns))]
        listed = ", ".join(names)
        sql = (
            f"WITH answer({listed}) AS ({sql}) "
            f"SELECT json_group_array(json_array({listed})) FROM answer"
        )
        results = tuple(
            (n, convert)
            for n, type_ in enumerate(columns)
            if (convert := result_converter(type_)) is not None
        )
    return CompiledStatement(statement.name, sql, tuple(slots), results)


def _insert_defaults(statement: Statement, compiled: SQLCompiler) -> dict[str, Any]:
    """The values an INSERT gives the columns its rows leave out, from their Python-side
    defaults (SQLAlchemy fills them in per execution; compiled text would bind None)."""
    defaults: dict[str, Any] = {}
    for column in compiled.insert_prefetch:
        default = column.default
        if default is None or not default.is_scalar:
            raise ValueError(f"{statement.name}: {column.key}'s default is not a constant")
        defaults[column.key] = default.arg  # type: ignore[attr-defined]  # a scalar's value
    return defaults


def _selected_types(statement: Statement) -> list[TypeEngine[Any]]:
    columns = statement.sql.selected_columns  # type: ignore[attr-defined]  # a SELECT's
    return [column.type for column in columns]


class CompiledStatements:
    """Every routing statement compiled for SQLite, once per process (at the runner's start)."""

    def __init__(self) -> None:
        self.by_statement = {s: compile_statement(s) for s in all_statements()}

    def __getitem__(self, statement: Statement) -> CompiledStatement:
        return self.by_statement[statement]


def _power_of_two_chunks(count: int, largest: int) -> Iterator[tuple[int, int]]:
    """(start, size) covering `count` rows with sizes that are powers of two, at most
    `largest` (rounded down to one), largest first."""
    start, size = 0, 1 << (max(1, largest).bit_length() - 1)
    while start < count:
        while size > count - start:
            size //= 2
        yield start, size
        start += size


class SqliteStatements:
    """Statements on the runner's connection, inside the transaction the runner began. Its
    coroutines never suspend: the runner drives the whole transaction without an event loop."""

    def __init__(self, connection: sqlite3.Connection, compiled: CompiledStatements) -> None:
        self.connection = connection
        self.compiled = compiled

    async def rows(self, statement: Statement, params: Sequence[Any]) -> list[list[Any]]:
        compiled = self.compiled[statement]
        found = self.connection.execute(compiled.sql, compiled.bind(params)).fetchone()[0]
        return compiled.read(json.loads(found))

    async def execute(self, statement: Statement, params: Sequence[Any]) -> None:
        compiled = self.compiled[statement]
        self.connection.execute(compiled.sql, compiled.bind(params))

    async def execute_many(self, statement: Statement, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        compiled = self.compiled[statement]
        if statement.inserts_rows:
            self._insert(compiled, rows)
        else:
            bind = compiled.bind
            self.connection.executemany(compiled.sql, [bind(row) for row in rows])

    def _insert(self, compiled: CompiledStatement, rows: Sequence[Sequence[Any]]) -> None:
        """`INSERT … VALUES (…), (…), …`: the rows' values one after the other, a few
        statements per batch, each within this SQLite's limit on bound variables (32,766 since
        3.32, 999 before). Flat, so a chunk is one slice."""
        values = compiled.bind_rows(rows)
        width, count = len(compiled.slots), len(rows)
        limit = self.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width
        for start, size in _power_of_two_chunks(count, min(INSERT_CHUNK, limit)):
            chunk = values if size == count else values[start * width : (start + size) * width]
            self.connection.execute(compiled.insert_sql(size), chunk)


def sqlite_store(connection: sqlite3.Connection, compiled: CompiledStatements) -> SqlRoutingStore:
    """The routing store of the connection's current transaction."""
    return SqlRoutingStore(SqliteStatements(connection, compiled))
