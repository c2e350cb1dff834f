"""Why an AMQP connection was lost, as a bounded label for metrics and a line for logs.

The label comes from a fixed set (the exception's class or the broker's reply code, never its
text), so a publisher that provokes odd errors cannot grow the metric's series.
"""

import asyncio
from typing import Final

from aiormq import exceptions as amqp

FORCED: Final = 320  # CONNECTION_FORCED: `rabbitmqctl close_connection`, a node stopping
_BY_CLASS: tuple[tuple[type[BaseException], str], ...] = (
    (amqp.ConnectionInternalError, "internal_error"),  # 541, e.g. a forged direct reply-to
    (amqp.ConnectionFrameError, "frame_error"),  # 501, e.g. a frame over the frame size
    (amqp.ConnectionSyntaxError, "syntax_error"),
    (amqp.ConnectionCommandInvalid, "command_invalid"),
    (amqp.ConnectionChannelError, "channel_error"),
    (amqp.ConnectionUnexpectedFrame, "unexpected_frame"),
    (amqp.ConnectionResourceError, "resource_error"),
    (amqp.ConnectionNotAllowed, "not_allowed"),
    (amqp.ConnectionNotImplemented, "not_implemented"),
    (amqp.AuthenticationError, "authentication"),
    (amqp.ProbableAuthenticationError, "authentication"),
    (amqp.IncompatibleProtocolError, "protocol"),
    (TimeoutError, "timeout"),
    (asyncio.IncompleteReadError, "network"),
    (ConnectionError, "network"),
    (OSError, "network"),
    (RecursionError, "decode_error"),
    (UnicodeError, "decode_error"),
    (ValueError, "decode_error"),
    (amqp.ProtocolSyntaxError, "decode_error"),
)
CAUSES: Final = frozenset(
    {label for _, label in _BY_CLASS} | {"forced", "closed_by_broker", "other"}
)


def loss_cause(error: object) -> str:
    """One label of `CAUSES` for what a close callback was given (an exception, or None)."""
    if isinstance(error, amqp.ConnectionClosed) and type(error) is amqp.ConnectionClosed:
        code = error.args[0] if error.args else None
        return "forced" if code == FORCED else "closed_by_broker"
    if isinstance(error, BaseException):
        for kind, label in _BY_CLASS:
            if isinstance(error, kind):
                return label
    return "other"


def describe(error: object) -> str:
    """The error as one short line for the log (no URL, so no password, is part of it)."""
    if not isinstance(error, BaseException):
        return "closed"
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}"[:300] if text else type(error).__name__
