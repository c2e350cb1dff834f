"""Which database failures are worth retrying. Everything not named here is permanent."""

import sqlite3

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

_TRANSIENT_SQLSTATES = {
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "55P03",  # lock_not_available
    "57P01",  # admin_shutdown
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now
    "53300",  # too_many_connections
}
_TRANSIENT_SQLITE_TEXT = ("database is locked", "database is busy", "database table is locked")


def is_transient(exc: BaseException) -> bool:
    """True for errors a later attempt can succeed on: locks, lost connections, races."""
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
        return True
    if isinstance(exc, sqlite3.Error):  # the worker's SQLite lane talks to sqlite3 directly
        return _sqlite_raw_transient(exc)
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, IntegrityError):
        # Two workers inserting the same message_id or e-mail: the retry sees the winner's row.
        text = str(exc.orig).lower()
        return "message_id" in text or ("leads" in text and "email" in text)
    if isinstance(exc, OperationalError | DBAPIError):
        return _sqlstate(exc) in _TRANSIENT_SQLSTATES or _sqlite_busy(exc) or _pg_connection(exc)
    return False


def _sqlstate(exc: DBAPIError) -> str | None:
    orig = exc.orig
    return getattr(orig, "sqlstate", None) or getattr(
        getattr(orig, "__cause__", None), "sqlstate", None
    )


def _sqlite_busy(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return any(t in text for t in _TRANSIENT_SQLITE_TEXT)


def _pg_connection(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return "connection" in text and ("closed" in text or "lost" in text or "refused" in text)


def _sqlite_raw_transient(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    if isinstance(exc, sqlite3.IntegrityError):
        return "message_id" in text or "leads.email" in text
    return isinstance(exc, sqlite3.OperationalError) and any(
        t in text for t in _TRANSIENT_SQLITE_TEXT
    )
