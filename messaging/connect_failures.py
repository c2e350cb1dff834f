"""Why a broker node refused a first connection, in words an operator can act on.

aiormq reports a missing vhost as "Expected one of ['Connection.OpenOk'], got
<Connection.Close object at 0x...>" and a refused port as a bare errno; start-up lines (the
CLI's, the API's retry log) need the kind of failure and what to do about it instead.
tests/ops/test_startup_errors.py fails if an aiormq upgrade changes what is classified here.
"""

import enum
import socket
from dataclasses import dataclass

from aiormq.exceptions import (
    AuthenticationError,
    ConnectionClosed,
    ConnectionNotAllowed,
    IncompatibleProtocolError,
    InvalidFrameError,
    ProbableAuthenticationError,
)
from yarl import URL

from schemas.redact import redact

NOT_ALLOWED = 530  # AMQP reply code: the vhost is missing or the user may not open it


class BrokerFailure(enum.Enum):
    DOWN = "down"  # nothing answered: refused, timed out, unknown host, not an AMQP server
    VHOST = "vhost"  # the node answered and refused the vhost
    LOGIN = "login"  # the node answered and refused the user name or password


@dataclass(frozen=True)
class NodeFailure:
    url: str  # the node's URL as configured (holds the password: print through `redact`)
    kind: BrokerFailure
    detail: str  # one short phrase: "connection refused", "vhost 'x' refused"

    @property
    def address(self) -> str:
        parsed = URL(self.url)
        port = parsed.port or (5671 if parsed.scheme == "amqps" else 5672)
        return f"{parsed.host}:{port}"

    def __str__(self) -> str:
        return f"{self.address}: {self.detail}"


def classify(url: str, exc: BaseException, timeout_s: float) -> NodeFailure:
    """The kind of one node's failure and a short phrase for it (never the password)."""
    parsed = URL(url)
    vhost = parsed.path[1:] or "/"
    user = parsed.user or "guest"
    if isinstance(exc, ProbableAuthenticationError | AuthenticationError):
        return NodeFailure(url, BrokerFailure.LOGIN, f"login of user {user!r} refused")
    if _vhost_refused(exc):
        return NodeFailure(url, BrokerFailure.VHOST, f"vhost {vhost!r} refused to user {user!r}")
    return NodeFailure(url, BrokerFailure.DOWN, _down_detail(exc, timeout_s))


def _vhost_refused(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionNotAllowed):
        return True
    if isinstance(exc, ConnectionClosed) and exc.args and exc.args[0] == NOT_ALLOWED:
        return True
    # aiormq 7: a Connection.Close in answer to Connection.Open (the vhost) is a frame error.
    text = str(exc)
    return isinstance(exc, InvalidFrameError) and "OpenOk" in text and "Connection.Close" in text


def _down_detail(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout_s:g} s"
    if isinstance(exc, socket.gaierror):
        return "host name not found"
    if isinstance(exc, IncompatibleProtocolError):
        return "answered, but not as an AMQP server (wrong port?)"
    cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
    if isinstance(cause, ConnectionRefusedError) or (
        isinstance(cause, OSError) and cause.errno == 111
    ):
        return "connection refused"
    if isinstance(exc, OSError) and exc.args and isinstance(exc.args[0], int):
        # aiormq re-raises an OSError's args: (errno, strerror)
        return str(exc.args[-1]).lower() if len(exc.args) > 1 else str(exc)
    return redact(f"{type(exc).__name__}: {exc}")[:200]


def advice(failures: tuple[NodeFailure, ...]) -> tuple[BrokerFailure, str]:
    """The failure that matters most and one line: which nodes, what went wrong, what to do.

    A node that answered and refused (vhost, login) says more than one that is down: with a
    cluster, the refusal is the setting to fix.
    """
    kind = next((f.kind for f in failures if f.kind is not BrokerFailure.DOWN), BrokerFailure.DOWN)
    first = next(f for f in failures if f.kind is kind)
    what = "; ".join(str(f) for f in failures)
    where = f"({what}) [AMQP_URL={redact(','.join(f.url for f in failures))}]"
    if kind is BrokerFailure.LOGIN:
        return (
            kind,
            f"RabbitMQ refused the login {where}: fix the user name or password in AMQP_URL",
        )
    if kind is BrokerFailure.VHOST:
        vhost = URL(first.url).path[1:] or "/"
        user = URL(first.url).user or "guest"
        return kind, (
            f"RabbitMQ refused the vhost {where}: it does not exist or the user may not use it; "
            f"create it (rabbitmqctl add_vhost {vhost}; rabbitmqctl set_permissions -p {vhost} "
            f"{user} '.*' '.*' '.*') or fix the vhost in AMQP_URL"
        )
    return kind, f"no node in AMQP_URL answered {where}: start RabbitMQ or fix AMQP_URL"
