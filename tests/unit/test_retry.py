"""Transient errors are retried with bounded backoff; permanent ones are not retried at all."""

from random import Random

import pytest

from db.retry import RetriesExhausted, backoff_delay, retry_transient


def test_backoff_grows_and_is_capped() -> None:
    rng = Random(3)
    for attempt in range(12):
        delay = backoff_delay(attempt, rng, base_s=0.05, cap_s=2.0)
        assert 0 <= delay <= min(2.0, 0.05 * 2**attempt)


class Flaky:
    def __init__(self, failures: int, exc: Exception) -> None:
        self.failures, self.exc, self.calls = failures, exc, 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc
        return "done"


async def test_transient_errors_are_retried_until_success() -> None:
    op = Flaky(2, ConnectionError("gone"))
    result = await retry_transient(op, attempts=4, is_transient=lambda e: True, rng=Random(1))
    assert result == "done" and op.calls == 3


async def test_retry_budget_is_bounded() -> None:
    op = Flaky(10, ConnectionError("gone"))
    with pytest.raises(RetriesExhausted, match="after 3 attempts"):
        await retry_transient(op, attempts=3, is_transient=lambda e: True, rng=Random(1))
    assert op.calls == 3


async def test_permanent_errors_are_raised_at_once() -> None:
    op = Flaky(10, ValueError("bug"))
    with pytest.raises(ValueError):
        await retry_transient(op, attempts=5, is_transient=lambda e: False, rng=Random(1))
    assert op.calls == 1
