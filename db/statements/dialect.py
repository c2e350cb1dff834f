"""What the routing statements say differently on SQLite and PostgreSQL, each said once here.

Each construct compiles to one text per dialect, so a statement that uses it stays one
definition. Locks (`FOR UPDATE`, `SKIP LOCKED`) need nothing here: they are written in the
statements with `with_for_update`, which SQLite's compiler leaves out (there, the transaction
holds the database's write lock from its `BEGIN IMMEDIATE`).
"""

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Dialect, Integer, String, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.visitors import InternalTraversal, _TraverseInternalsType
from sqlalchemy.types import Boolean, TypeDecorator, TypeEngine

from db.types import UTCDateTime


# -- lists: `column IN (values bound as one parameter)` ------------------------------------------
class Listed(TypeDecorator[Iterable[Any]]):
    """Values of one column type bound as one parameter: a JSON array on SQLite (read with
    `json_each`), an array on PostgreSQL (`= ANY`). One placeholder per value would change a
    statement's text with every batch size; this way the text is fixed, compiled once and kept
    in SQLite's statement cache and asyncpg's prepared statements."""

    impl = String
    cache_ok = True

    def __init__(self, item: TypeEngine[Any]) -> None:
        super().__init__()
        self.item = item

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String())
        # Text without the column's length: a cast to `varchar(n)[]` would cut a longer
        # value short, and the cut value could match a stored one.
        item = String() if isinstance(self.item, String) else self.item
        return dialect.type_descriptor(ARRAY(item))

    def process_bind_param(self, value: Iterable[Any] | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return json_list(value) if dialect.name == "sqlite" else list(value)


def json_list(values: Iterable[Any]) -> str:
    """A listed value as SQLite binds it."""
    return json.dumps(values if isinstance(values, list) else list(values))


class InList(ColumnElement[bool]):
    """`column IN (the values bound as one list)`."""

    __visit_name__ = "in_list"
    inherit_cache = True
    _is_implicitly_boolean = True  # a comparison: SQLite needs no `= 1` after it
    _traverse_internals: _TraverseInternalsType = [  # noqa: RUF012  (SQLAlchemy's form)
        ("column", InternalTraversal.dp_clauseelement),
        ("values", InternalTraversal.dp_clauseelement),
    ]
    type = Boolean()

    def __init__(self, column: ColumnElement[Any], values: BindParameter[Any]) -> None:
        self.column = column
        self.values = values


def in_list(column: Any, name: str) -> InList:
    """`column` is one of the values bound as `name` (any collection of them)."""
    return InList(column, bindparam(name, type_=Listed(column.type)))


@compiles(InList, "sqlite")
def _in_json_array(element: InList, compiler: SQLCompiler, **kw: Any) -> str:
    column, values = compiler.process(element.column, **kw), compiler.process(element.values, **kw)
    return f"{column} IN (SELECT value FROM json_each({values}))"


@compiles(InList)
def _any_of_array(element: InList, compiler: SQLCompiler, **kw: Any) -> str:
    column, values = compiler.process(element.column, **kw), compiler.process(element.values, **kw)
    return f"{column} = ANY ({values})"


# -- moments: a bound moment minus a number of seconds from a column -----------------------------
class SecondsBefore(ColumnElement[Any]):
    """`moment - seconds`, compared with stored moments in the column type's stored form."""

    __visit_name__ = "seconds_before"
    inherit_cache = True
    _traverse_internals: _TraverseInternalsType = [  # noqa: RUF012  (SQLAlchemy's form)
        ("moment", InternalTraversal.dp_clauseelement),
        ("seconds", InternalTraversal.dp_clauseelement),
    ]
    type = UTCDateTime()

    def __init__(self, moment: BindParameter[Any], seconds: ColumnElement[Any]) -> None:
        self.moment = moment
        self.seconds = seconds


def seconds_before(name: str, seconds: Any) -> SecondsBefore:
    """The moment bound as `name`, `seconds` (a whole number of them) earlier."""
    return SecondsBefore(bindparam(name, type_=UTCDateTime()), seconds)


@compiles(SecondsBefore, "sqlite")
def _sqlite_seconds_before(element: SecondsBefore, compiler: SQLCompiler, **kw: Any) -> str:
    # Moments are stored as text, "YYYY-MM-DD HH:MM:SS.ffffff"; strftime keeps milliseconds
    # only, so whole seconds are taken off the first 19 characters and the fraction kept.
    moment, seconds = (
        compiler.process(element.moment, **kw),
        compiler.process(element.seconds, **kw),
    )
    fraction = compiler.process(element.moment, **kw)
    return (
        f"(strftime('%Y-%m-%d %H:%M:%S', {moment}, '-' || {seconds} || ' seconds') "
        f"|| substr({fraction}, 20))"
    )


@compiles(SecondsBefore)
def _interval_seconds_before(element: SecondsBefore, compiler: SQLCompiler, **kw: Any) -> str:
    moment, seconds = (
        compiler.process(element.moment, **kw),
        compiler.process(element.seconds, **kw),
    )
    return f"(CAST({moment} AS TIMESTAMP WITH TIME ZONE) - make_interval(secs => {seconds}))"


# -- ids reserved before an insert ---------------------------------------------------------------
class ReservedIds(Executable, ClauseElement):
    """A statement: one new value of a table's integer primary key per element of a bound
    list (`1, 2, …, n` for n rows), in order.

    PostgreSQL draws them from the key's sequence (concurrent transactions get different
    ones). SQLite counts on from the current maximum: safe, because every SQLite transaction
    here holds the write lock from its BEGIN, so nobody else inserts before the commit.
    Reserved rather than returned (`INSERT … RETURNING`): SQLite does not promise the order
    of returned rows, and the router needs the ids in row order. A bound list rather than a
    count: SQLite has no `generate_series`, and its recursive CTE cost twice as much.
    """

    __visit_name__ = "reserved_ids"
    inherit_cache = True
    is_select = True
    _traverse_internals: _TraverseInternalsType = [  # noqa: RUF012  (SQLAlchemy's form)
        ("key", InternalTraversal.dp_clauseelement),
        ("steps", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, key: ColumnElement[int], steps: BindParameter[Any]) -> None:
        self.key = key
        self.steps = steps

    @property
    def selected_columns(self) -> tuple[ColumnElement[int]]:
        return (self.key,)


def reserved_ids(key: Any, name: str) -> ReservedIds:
    """The values of `key` to give the next rows: one per element of the list bound as
    `name`, which must be `1, 2, …, n`."""
    return ReservedIds(key, bindparam(name, type_=Listed(Integer())))


def _key_names(element: ReservedIds) -> tuple[str, str]:
    key: Any = element.key  # a table's column
    return str(key.table.name), str(key.name)


@compiles(ReservedIds, "sqlite")
def _after_the_maximum(element: ReservedIds, compiler: SQLCompiler, **kw: Any) -> str:
    table, key = _key_names(element)
    steps = compiler.process(element.steps, **kw)
    return (
        f"SELECT (SELECT coalesce(max({key}), 0) FROM {table}) + value AS {key} "
        f"FROM json_each({steps})"
    )


@compiles(ReservedIds)
def _from_the_sequence(element: ReservedIds, compiler: SQLCompiler, **kw: Any) -> str:
    table, key = _key_names(element)
    steps = compiler.process(element.steps, **kw)
    return (
        f"SELECT nextval(pg_get_serial_sequence('{table}', '{key}')) AS {key} "
        f"FROM unnest({steps}) WITH ORDINALITY AS step(value, n) ORDER BY n"
    )
