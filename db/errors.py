"""Which database failures are worth retrying. Everything not named here is permanent."""

import sqlite3

from sqlalchemy.exc import DBAPIError, IntegrityError

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
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    # SQLAlchemy wraps the driver's error; the sqlite3 transaction runner raises sqlite3's own.
    error = exc.orig if isinstance(exc, DBAPIError) else exc
    text = str(error).lower()
    if isinstance(exc, IntegrityError) or isinstance(error, sqlite3.IntegrityError):
        # Two workers inserting the same message_id or contact: the retry sees the winner's row.
        # A row's foreign key to a lead (`lead_uuid`) that a concurrent merge removed, or a
        # merge removing a lead that a concurrent insert just referred to: the retry reads the
        # survivor, or moves the new row too.
        lead_gone = "foreign key" in text and "lead_uuid" in text
        return "message_id" in text or "lead_contacts" in text or lead_gone
    if isinstance(exc, DBAPIError) or isinstance(error, sqlite3.Error):
        return _sqlstate(error) in _TRANSIENT_SQLSTATES or _sqlite_busy(text) or _pg_lost(text)
    return False


def _sqlstate(error: BaseException | None) -> str | None:
    return getattr(error, "sqlstate", None) or getattr(
        getattr(error, "__cause__", None), "sqlstate", None
    )


def _sqlite_busy(text: str) -> bool:
    return any(t in text for t in _TRANSIENT_SQLITE_TEXT)


def _pg_lost(text: str) -> bool:
    return "connection" in text and ("closed" in text or "lost" in text or "refused" in text)
