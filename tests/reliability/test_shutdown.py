"""Issue 4.5, graceful shutdown: SIGTERM in the middle of a burst loses nothing, exits in time.

On SIGTERM the worker cancels its consumers, finishes the deliveries it already holds within
SHUTDOWN_GRACE_S, and closes; whatever it did not finish was never acked, so the broker gives it
to the next worker. Run twice: a grace long enough to finish, and one far too short to.
"""

import time
import uuid
from signal import SIGTERM

import pytest
from aio_pika.abc import AbstractChannel

from tests.reliability.conftest import FleetFactory, Sessions
from tests.reliability.helpers import (
    assert_event_order,
    assert_every_event_published,
    assert_exactly_once,
    event_log,
    one_source,
    publish_creates,
)

pytestmark = pytest.mark.slow
# Well above what one worker holds at once (prefetch 1024 plus the batch it is routing), so the
# SIGTERM lands mid-burst even when the worker is fast and its log is read late.
MESSAGES = 5000
EXIT_MARGIN_S = 5.0  # start-up of the event loop's shutdown, closing AMQP and the pool


@pytest.mark.parametrize("grace_s", [5.0, 0.05], ids=["grace-enough", "grace-expires"])
async def test_sigterm_mid_burst_loses_nothing_and_exits_in_bounded_time(
    postgres_url: str,
    pg_sessions: Sessions,
    workers: FleetFactory,
    channel: AbstractChannel,
    grace_s: float,
) -> None:
    source, _ = await one_source(pg_sessions, [100, 100])
    log = await event_log(channel)
    emails = [f"t{n}@example.com" for n in range(MESSAGES)]
    message_ids = await publish_creates(channel, emails, source, uuid.uuid4().hex[:8])
    async with workers(postgres_url, shutdown_grace_s=grace_s) as fleet:
        worker = await fleet.start("worker")
        await worker.wait_count("interaction created", 300)
        signalled = time.monotonic()
        worker.signal(SIGTERM)
        code = await worker.wait(within=grace_s + EXIT_MARGIN_S + 10)
        took = time.monotonic() - signalled
        done_by_first = len(worker.events("interaction created"))

        finisher = await fleet.start("finisher", burst=True)
        assert await finisher.wait(within=60) == 0, finisher.output()
        await log.wait(lambda lg: len(lg.interactions()) == MESSAGES, 30, "every interaction")
        await assert_every_event_published(pg_sessions, log, within=10)
        await assert_event_order(pg_sessions, log, arrival=True)

    assert code == 0, worker.output()
    assert took < grace_s + EXIT_MARGIN_S, f"took {took:.1f}s to exit after SIGTERM"
    assert worker.events("worker stopped"), worker.output()
    assert done_by_first < MESSAGES, "SIGTERM came after the burst: nothing was in flight"
    if grace_s < 1:
        assert worker.events("grace period over; unfinished deliveries go back to the queue")
    await assert_exactly_once(pg_sessions, message_ids)
