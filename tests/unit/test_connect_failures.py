"""What a refused first connection is called, and the line an operator reads (no password)."""

import socket

from aiormq.exceptions import (
    AMQPConnectionError,
    ConnectionNotAllowed,
    InvalidFrameError,
    ProbableAuthenticationError,
)
from sqlalchemy.exc import DBAPIError

from cli.startup_errors import ExitCode, explain
from db.connect_failures import DatabaseFailure, DatabaseUnavailable
from db.connect_failures import explain as explain_database
from messaging.connect_failures import BrokerFailure, advice, classify
from messaging.nodes import NoNodeAnswered

URL = "amqp://lr:pw-secret@rabbit1:5672/prod"
OTHER = "amqp://lr:pw-secret@rabbit2/prod"


def refused() -> AMQPConnectionError:
    try:
        raise AMQPConnectionError(111, "Connection refused") from ConnectionRefusedError(111, "x")
    except AMQPConnectionError as exc:
        return exc


def test_each_kind_of_broker_refusal() -> None:
    assert classify(URL, refused(), 10).detail == "connection refused"
    assert classify(URL, TimeoutError(), 10).detail == "no answer within 10 s"
    assert classify(URL, socket.gaierror(-2, "Name"), 10).detail == "host name not found"
    login = classify(URL, ProbableAuthenticationError("ACCESS_REFUSED"), 10)
    assert (login.kind, login.detail) == (BrokerFailure.LOGIN, "login of user 'lr' refused")
    # aiormq 7 reports a refused vhost as an unexpected frame; newer ones may close with 530.
    frame = InvalidFrameError("Expected one of ['Connection.OpenOk'], got <Connection.Close …>")
    for exc in (frame, ConnectionNotAllowed(530, "NOT_ALLOWED - vhost prod not found")):
        assert classify(URL, exc, 10).kind is BrokerFailure.VHOST


def test_a_refusal_outranks_a_node_that_is_down_and_no_password_is_printed() -> None:
    failures = (
        classify(URL, refused(), 10),
        classify(OTHER, ProbableAuthenticationError("ACCESS_REFUSED"), 10),
    )
    kind, line = advice(failures)
    assert kind is BrokerFailure.LOGIN
    assert "rabbit1:5672: connection refused; rabbit2:5672: login of user 'lr' refused" in line
    assert "pw-secret" not in line and "lr:***@rabbit2/prod" in line


def test_the_cli_line_and_code() -> None:
    down = explain("worker", NoNodeAnswered([classify(URL, refused(), 10)]))
    assert down is not None and down.code == ExitCode.BROKER_DOWN
    assert down.line.startswith("leadrouter worker: no node in AMQP_URL answered (rabbit1:5672")
    assert explain("worker", RuntimeError("a bug")) is None  # keeps its traceback


class FakeAsyncpgError(Exception):
    sqlstate = "3D000"


def test_database_refusals() -> None:
    url = "postgresql+asyncpg://lr:pw-secret@db:5433/leads"
    missing = DBAPIError("connect", None, FakeAsyncpgError('database "leads" does not exist'))
    problem = explain_database(url, missing)
    assert problem is not None and problem.kind is DatabaseFailure.MISSING
    assert "PostgreSQL at db:5433 has no database 'leads'" in problem.line
    assert "pw-secret" not in problem.line
    failure = explain("db upgrade", DatabaseUnavailable(problem))
    assert failure is not None and failure.code == ExitCode.DATABASE_MISSING
    down = explain_database(url, ConnectionRefusedError(111, "Connection refused"))
    assert down is not None and down.kind is DatabaseFailure.DOWN
    assert explain_database(url, ValueError("not a connection problem")) is None
