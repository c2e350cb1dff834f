"""Column types that behave the same on SQLite and PostgreSQL."""

import functools
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, String
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine

from schemas.events import InteractionStatus

# How a moment is stored on SQLite: naive UTC text, microseconds kept (SQLAlchemy's default,
# named here so the ORM and the worker's plain-sqlite3 store write one form: `sqlite_time`).
SQLITE_DATETIME_FORMAT = (
    "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d"
)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out; SQLite stores naive text, so re-attach UTC on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name != "sqlite":
            return super().load_dialect_impl(dialect)
        sqlite_datetime: Any = sqlite.DATETIME  # its constructor is untyped
        stored: TypeEngine[Any] = sqlite_datetime(
            timezone=True, storage_format=SQLITE_DATETIME_FORMAT
        )
        return stored

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return (
            value.astimezone(UTC)
            if dialect.name != "sqlite"
            else value.astimezone(UTC).replace(tzinfo=None)
        )

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


@functools.lru_cache(maxsize=8)  # a routing batch writes one `now` into every row it touches
def sqlite_time(moment: datetime | None) -> str | None:
    """A UTC moment as `UTCDateTime` stores it on SQLite, for the SQLite lane, which binds its
    compiled statements' values itself (`db/routing_store/sqlite.py`)."""
    if moment is None:
        return None
    utc = moment.astimezone(UTC)
    return SQLITE_DATETIME_FORMAT % {
        "year": utc.year,
        "month": utc.month,
        "day": utc.day,
        "hour": utc.hour,
        "minute": utc.minute,
        "second": utc.second,
        "microsecond": utc.microsecond,
    }


class StatusText(TypeDecorator[InteractionStatus]):
    """An interaction's status: `InteractionStatus` in Python, its value as text in the table
    (the schema is unchanged: a CHECK constraint lists the values)."""

    impl = String(16)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else InteractionStatus(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> InteractionStatus | None:
        return None if value is None else InteractionStatus(value)


JSONDocument: Any = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
