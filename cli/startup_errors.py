"""A command that cannot reach RabbitMQ or the database ends in one line and its own exit code.

Each kind has a distinct code, so a supervisor or a script can tell a broker that is down
from a password that is wrong without reading the text. Anything else keeps its traceback:
that is a bug to report, not a setting to fix.
"""

import enum
from dataclasses import dataclass

from db.connect_failures import DatabaseFailure, DatabaseUnavailable
from messaging.connect_failures import BrokerFailure, advice
from messaging.nodes import NoNodeAnswered
from schemas.redact import redact


class ExitCode(enum.IntEnum):
    """The exit codes of every command (the README's table)."""

    OK = 0
    FAILED = 1  # an invalid setting, or the command's own failure (the demo's missing events)
    USAGE = 2  # a bad command line, or a precondition the command names (no worker running)
    SCHEMA_BEHIND = 3
    TOPOLOGY_CONFLICT = 4
    BROKER_DOWN = 10
    BROKER_VHOST = 11
    BROKER_LOGIN = 12
    DATABASE_MISSING = 13
    DATABASE_LOGIN = 14
    DATABASE_DOWN = 15


BROKER_CODES = {
    BrokerFailure.DOWN: ExitCode.BROKER_DOWN,
    BrokerFailure.VHOST: ExitCode.BROKER_VHOST,
    BrokerFailure.LOGIN: ExitCode.BROKER_LOGIN,
}
DATABASE_CODES = {
    DatabaseFailure.MISSING: ExitCode.DATABASE_MISSING,
    DatabaseFailure.LOGIN: ExitCode.DATABASE_LOGIN,
    DatabaseFailure.DOWN: ExitCode.DATABASE_DOWN,
}


@dataclass(frozen=True)
class StartupFailure:
    code: ExitCode
    line: str  # masked, one line


def explain(command: str, exc: BaseException) -> StartupFailure | None:
    """The line and exit code for a first connection's failure; None for anything else."""
    if isinstance(exc, NoNodeAnswered) and exc.failures:
        kind, line = advice(exc.failures)
        return StartupFailure(BROKER_CODES[kind], _one_line(command, line))
    if isinstance(exc, DatabaseUnavailable):
        problem = exc.problem
        return StartupFailure(DATABASE_CODES[problem.kind], _one_line(command, problem.line))
    return None


def _one_line(command: str, text: str) -> str:
    return redact(f"leadrouter {command}: {' '.join(text.split())}")
