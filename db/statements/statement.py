"""A routing statement: one SQLAlchemy Core statement and the names of its parameters.

The store passes parameters as tuples in `params` order; each runner maps them onto the
statement as it runs it (a dict for SQLAlchemy, positions in the compiled text for sqlite3).
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, String, bindparam
from sqlalchemy.sql.base import Executable

from db.types import UTCDateTime


@dataclass(frozen=True, eq=False)
class Statement:
    name: str  # for errors and logs: `interactions.set_closed`
    sql: Executable
    params: tuple[str, ...] = ()
    returns_rows: bool = False
    # An INSERT of many rows: SQLite runs it as multi-row VALUES, not row by row.
    inserts_rows: bool = False


def now_param(name: str = "now") -> Any:
    """A moment, bound in the form the column type stores (naive UTC text on SQLite)."""
    return bindparam(name, type_=UTCDateTime())


def int_param(name: str) -> Any:
    return bindparam(name, type_=Integer())


def text_param(name: str) -> Any:
    return bindparam(name, type_=String())
