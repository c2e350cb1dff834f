"""Why the database refused a first connection, in words an operator can act on.

SQLAlchemy wraps asyncpg's refusals in a DBAPIError whose text is the driver's; a refused port
is a bare OSError. Start-up lines need the kind of failure, the database (password masked)
and what to do instead of a 40-line traceback.
"""

import contextlib
import enum
import socket
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

# SQLSTATE classes and codes from PostgreSQL's errcodes: the login, the database name.
MISSING_DATABASE = "3D000"  # invalid_catalog_name
LOGIN_REFUSED = ("28000", "28P01")  # invalid_authorization_specification, invalid_password


class DatabaseFailure(enum.Enum):
    MISSING = "missing"  # the server answered: no such database
    LOGIN = "login"  # the server answered: the user or password is refused
    DOWN = "down"  # nothing answered (or SQLite could not open its file)


@dataclass(frozen=True)
class DatabaseProblem:
    kind: DatabaseFailure
    line: str  # names the database (password masked), what went wrong and what to do


class DatabaseUnavailable(RuntimeError):
    """The database refused or did not answer the first connection of a process."""

    def __init__(self, problem: DatabaseProblem) -> None:
        super().__init__(problem.line)
        self.problem = problem


@contextlib.contextmanager
def first_connection(database_url: str) -> Iterator[None]:
    """Around a process's first use of the database: a refusal becomes DatabaseUnavailable.

    Only there: later, a lost connection is the retry logic's business, not a setting to fix.
    """
    try:
        yield
    except Exception as exc:
        problem = explain(database_url, exc)
        if problem is None:
            raise
        raise DatabaseUnavailable(problem) from exc


def explain(database_url: str, exc: BaseException) -> DatabaseProblem | None:
    """A problem for a connection failure; None for anything else (a bug keeps its traceback)."""
    url = make_url(database_url)
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite":
        if isinstance(exc, DBAPIError) and isinstance(exc.orig, sqlite3.OperationalError):
            return DatabaseProblem(
                DatabaseFailure.DOWN,
                f"cannot open the SQLite database {url.database!r} ({exc.orig}) "
                f"[DATABASE_URL={shown}]: create its folder or fix DATABASE_URL",
            )
        return None
    server = f"PostgreSQL at {url.host or 'localhost'}:{url.port or 5432}"
    state = _sqlstate(exc)
    message = _driver_message(exc)
    if state == MISSING_DATABASE:
        return DatabaseProblem(
            DatabaseFailure.MISSING,
            f"{server} has no database {url.database!r} [DATABASE_URL={shown}]: create it "
            f"(createdb {url.database}) and run `leadrouter db upgrade`, or fix DATABASE_URL",
        )
    if state in LOGIN_REFUSED:
        return DatabaseProblem(
            DatabaseFailure.LOGIN,
            f"{server} refused the login of user {url.username!r} ({message}) "
            f"[DATABASE_URL={shown}]: fix the user name or password in DATABASE_URL",
        )
    reason = _down_reason(exc)
    if reason is None:
        return None
    return DatabaseProblem(
        DatabaseFailure.DOWN,
        f"{server} did not answer ({reason}) [DATABASE_URL={shown}]: "
        "start PostgreSQL or fix the host and port in DATABASE_URL",
    )


def _sqlstate(exc: BaseException) -> str | None:
    orig = exc.orig if isinstance(exc, DBAPIError) else None
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return str(state) if state else None


def _driver_message(exc: BaseException) -> str:
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    cause = orig.__cause__ if orig is not None and orig.__cause__ is not None else orig
    return str(cause).splitlines()[0][:200] if cause is not None else ""


def _down_reason(exc: BaseException) -> str | None:
    if isinstance(exc, DBAPIError):
        exc = exc.orig.__cause__ or exc.orig if exc.orig is not None else exc
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, socket.gaierror):
        return "host name not found"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError):
        return (exc.strerror or str(exc)).lower()
    return None
