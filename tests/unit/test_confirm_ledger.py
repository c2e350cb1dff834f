"""The publish-confirm ledger: in flight -> confirmed -> recorded, and the ways back.

Then the batch processor's side of it, with a fake transaction runner: what each stage reports.
"""

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from random import Random
from typing import Any, TypeVar, cast

import pytest

from messaging.publisher import EventPublisher
from routing.outcomes import RoutingOutcome
from worker.confirm_ledger import ConfirmLedger
from worker.metrics import WorkerMetrics
from worker.pipeline import BatchProcessor, PipelineConfig, RoutedBatch

T = TypeVar("T")


def test_an_event_is_in_flight_from_routed_until_recorded() -> None:
    ledger = ConfirmLedger()
    ledger.routed(["a", "b"])
    assert set(ledger.in_flight) == {"a", "b"} and not ledger.has_confirmed

    ledger.confirmed(["a", "b"])
    assert ledger.has_confirmed
    taken = ledger.take_confirmed()
    assert sorted(taken) == ["a", "b"]
    assert not ledger.has_confirmed
    assert set(ledger.in_flight) == {"a", "b"}, "taken, not yet committed: still skip them"

    ledger.recorded(taken)
    assert not ledger.in_flight and not ledger.has_confirmed


def test_ids_a_transaction_did_not_record_come_back_with_later_confirms() -> None:
    ledger = ConfirmLedger()
    ledger.routed(["a", "b"])
    ledger.confirmed(["a"])
    taken = ledger.take_confirmed()
    ledger.confirmed(["b"])  # confirmed while that transaction ran: waits for the next one
    assert ledger.take_confirmed() == ["b"]
    ledger.confirmed(["b"])

    ledger.not_recorded(taken)
    assert sorted(ledger.take_confirmed()) == ["a", "b"]
    assert set(ledger.in_flight) == {"a", "b"}


def test_abandoned_events_go_to_the_relay_and_leave_the_others() -> None:
    ledger = ConfirmLedger()
    ledger.routed(["a", "b", "c"])
    ledger.confirmed(["a"])
    ledger.abandoned(["b", "c"])
    assert set(ledger.in_flight) == {"a"}
    assert ledger.take_confirmed() == ["a"]


def test_in_flight_is_a_live_view_for_the_relay() -> None:
    """The relay holds it across its awaits: it must see events routed meanwhile."""
    ledger = ConfirmLedger()
    skip = ledger.in_flight
    ledger.routed(["a"])
    assert "a" in skip
    ledger.recorded(["a"])
    assert "a" not in skip


def test_nothing_to_take_is_an_empty_list() -> None:
    ledger = ConfirmLedger()
    assert ledger.take_confirmed() == []
    ledger.recorded([])
    assert not ledger.in_flight and not ledger.has_confirmed


# -- the batch processor reports to the ledger --------------------------------------------------


class FakeStore:
    def __init__(self, recorded: list[str]) -> None:
        self.recorded = recorded

    async def record_published(self, event_ids: Iterable[str], now: datetime) -> None:
        self.recorded.extend(event_ids)


class FakeRunner:
    """Runs the work against a store that only records; rolls back (raises) when told to."""

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.committed: list[str] = []

    async def run(self, work: Callable[[Any], Awaitable[T]]) -> T:
        if self.fail:
            raise ConnectionError("database away")
        pending: list[str] = []
        result = await work(FakeStore(pending))
        self.committed.extend(pending)
        return result


def processor(runner: FakeRunner, ledger: ConfirmLedger) -> BatchProcessor:
    publisher = cast(EventPublisher, object())  # these tests publish nothing
    return BatchProcessor(runner, publisher, Random(0), PipelineConfig(), WorkerMetrics(), ledger)


def settled_batch(event_ids: list[str]) -> RoutedBatch:
    return RoutedBatch([], RoutingOutcome(), {}, 0.0, event_ids)


async def test_idle_recording_commits_the_confirmed_and_ends_their_flight() -> None:
    ledger, runner = ConfirmLedger(), FakeRunner()
    ledger.routed(["a", "b"])
    ledger.confirmed(["a"])
    await processor(runner, ledger).record_confirmed()
    assert runner.committed == ["a"]
    assert set(ledger.in_flight) == {"b"} and not ledger.has_confirmed


async def test_idle_recording_that_fails_leaves_the_events_to_the_relay() -> None:
    ledger, runner = ConfirmLedger(), FakeRunner(fail=True)
    ledger.routed(["a"])
    ledger.confirmed(["a"])
    await processor(runner, ledger).record_confirmed()
    assert not ledger.in_flight and not ledger.has_confirmed


async def test_a_batch_without_a_transaction_puts_the_confirms_back() -> None:
    ledger, runner = ConfirmLedger(), FakeRunner()
    ledger.routed(["a"])
    ledger.confirmed(["a"])
    routed = await processor(runner, ledger).route([])
    assert routed.event_ids == [] and runner.committed == []
    assert ledger.take_confirmed() == ["a"] and set(ledger.in_flight) == {"a"}


async def test_a_settled_batch_hands_its_events_over_as_confirmed() -> None:
    ledger = ConfirmLedger()
    ledger.routed(["a"])
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    done.set_result(None)
    await processor(FakeRunner(), ledger).settle(settled_batch(["a"]), done)
    assert ledger.take_confirmed() == ["a"] and set(ledger.in_flight) == {"a"}


async def test_a_batch_whose_publish_failed_abandons_its_events() -> None:
    ledger = ConfirmLedger()
    ledger.routed(["a", "b"])
    failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    failed.set_exception(ConnectionError("channel closed"))
    with pytest.raises(ConnectionError):
        await processor(FakeRunner(), ledger).settle(settled_batch(["a"]), failed)
    assert set(ledger.in_flight) == {"b"} and not ledger.has_confirmed
