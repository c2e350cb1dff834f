"""Domain exceptions to HTTP answers, all as JSON `{"detail": ...}`."""

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError

from api.broker import BrokerUnavailable
from api.models.common import Conflict, NotFound
from api.validation_errors import validation_failed
from db.errors import is_transient
from db.retry import RetriesExhausted
from routing.router import AssignmentRefused


def _detail(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


async def _not_found(_: Request, exc: Exception) -> JSONResponse:
    return _detail(404, str(exc))


async def _conflict(_: Request, exc: Exception) -> JSONResponse:
    return _detail(409, str(exc))


async def _refused(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AssignmentRefused)
    return _detail(404 if exc.not_found else 409, exc.reason)


async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
    return _detail(503, str(exc), {"Retry-After": "2"})


async def _database(_: Request, exc: Exception) -> JSONResponse:
    """Locks, deadlocks and lost connections are worth a retry: 503. Anything else is a bug."""
    if is_transient(exc):
        return _database_busy()
    raise exc


async def _retries_exhausted(_: Request, exc: Exception) -> JSONResponse:
    return _database_busy()


def _database_busy() -> JSONResponse:
    return _detail(503, "database busy or unavailable, try again", {"Retry-After": "1"})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_failed)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(Conflict, _conflict)
    app.add_exception_handler(AssignmentRefused, _refused)
    app.add_exception_handler(BrokerUnavailable, _unavailable)
    app.add_exception_handler(RetriesExhausted, _retries_exhausted)
    app.add_exception_handler(DBAPIError, _database)
