"""Bounded exponential backoff with full jitter for transient failures.

Full jitter (a uniform draw up to the capped exponential delay) spreads retrying workers the
most; dramatiq's Retries middleware, whose permanent/transient split this follows, uses a
different jitter (half the delay fixed, half random) and much longer delays.
"""

import asyncio
from collections.abc import Awaitable, Callable
from random import Random
from typing import TypeVar

import structlog

T = TypeVar("T")
log = structlog.get_logger(__name__)


class RetriesExhausted(Exception):
    """A transient error outlived the retry budget; `__cause__` is the last one."""

    def __init__(self, attempts: int, last: BaseException) -> None:
        super().__init__(f"still failing after {attempts} attempts: {type(last).__name__}: {last}")
        self.attempts = attempts
        self.last = last


def backoff_delay(attempt: int, rng: Random, base_s: float = 0.05, cap_s: float = 2.0) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    return rng.uniform(0, min(cap_s, base_s * 2**attempt))


async def retry_transient(
    operation: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    is_transient: Callable[[BaseException], bool],
    rng: Random,
) -> T:
    """Run `operation`; retry transient errors with backoff, raise permanent ones at once."""
    for attempt in range(attempts):
        try:
            return await operation()
        except Exception as exc:
            if not is_transient(exc):
                raise
            if attempt + 1 == attempts:
                raise RetriesExhausted(attempts, exc) from exc
            delay = backoff_delay(attempt, rng)
            log.warning(
                "transient error, retrying",
                attempt=attempt + 1,
                delay_s=round(delay, 3),
                error=f"{type(exc).__name__}: {exc}"[:300],
            )
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")
