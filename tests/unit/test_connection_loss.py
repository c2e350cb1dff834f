"""The cause label of a lost connection comes from a fixed set, whatever the error says."""

import asyncio

import pytest
from aiormq import exceptions as amqp

from messaging.connection_loss import CAUSES, describe, loss_cause


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (amqp.ConnectionInternalError("INTERNAL_ERROR"), "internal_error"),
        (amqp.ConnectionFrameError("FRAME_ERROR - frame_too_large"), "frame_error"),
        (amqp.ConnectionClosed(320, "CONNECTION_FORCED - Closed via management plugin"), "forced"),
        (amqp.ConnectionClosed(999, "whatever the broker says"), "closed_by_broker"),
        (ConnectionResetError(104, "Connection reset by peer"), "network"),
        (asyncio.IncompleteReadError(b"", 7), "network"),
        (TimeoutError(), "timeout"),
        (RecursionError("maximum recursion depth exceeded"), "decode_error"),
        (None, "other"),
        (KeyError("x"), "other"),
    ],
)
def test_each_error_has_one_bounded_cause(error: object, cause: str) -> None:
    assert loss_cause(error) == cause and cause in CAUSES


def test_the_log_line_is_one_short_line() -> None:
    line = describe(amqp.ConnectionClosed(320, "CONNECTION_FORCED -\n" + "x" * 1000))
    assert "\n" not in line and len(line) <= 300 and line.startswith("ConnectionClosed: ")
    assert describe(None) == "closed"
