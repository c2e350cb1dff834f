"""Batches of deliveries: parse, route in one transaction, dead-letter, publish, ack.

Acks come only after the commit and the broker's confirm of every event, so a crash at any
point leaves the deliveries unacked and they come again; `message_id` makes that harmless.
"""

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from random import Random
from typing import Any, NamedTuple

import structlog
from aio_pika.abc import AbstractIncomingMessage
from aiormq.exceptions import ChannelInvalidStateError

from db.errors import is_transient
from db.retry import RetriesExhausted, retry_transient
from db.transactions import TransactionRunner
from db.types import utcnow
from messaging import tracing
from messaging.dead_letter_sender import DeadLetterNotStored, LetterStored
from messaging.lenient_strings import printable
from messaging.publisher import EventPublisher
from messaging.reply_to import ReplyToRefusal
from routing.commands import AcceptRequest, CloseRequest, CreateRequest, Request
from routing.outcomes import RefusalClass, Refused, Routed, RoutingOutcome
from routing.router import Router
from routing.store import RoutingStore
from schemas.events import EventType
from worker.confirm_ledger import ConfirmLedger
from worker.intake import Intake, RefusedDelivery
from worker.metrics import WorkerMetrics
from worker.parse import CommandKind, parse_command
from worker.reasons import error_summary, one_line

log = structlog.get_logger(__name__)
_DONE_LOG_LINES: dict[CommandKind, str] = {
    "create": "interaction created",
    "close": "interaction closed",
    "accept": "interaction accepted",
}
_REPLY_TO_IGNORED = {
    ReplyToRefusal.OWN_QUEUE: "reply_to names a queue of this service; ignored",
    ReplyToRefusal.MALFORMED: "reply_to is not a valid queue name; ignored",
    ReplyToRefusal.BROKER_WOULD_REFUSE: "reply_to is a form the broker refuses; ignored",
}
# A batch whose publishes failed (the publish connection lost, a nack) keeps its deliveries
# and sends its dead letters and events again, this often, backing off up to 2 s each time.
PUBLISH_ATTEMPTS = 8
_TIMER_LOG_LINES = {
    EventType.OVERDUE.value: "interaction overdue",
    EventType.OFFER_EXPIRED.value: "offer expired",
    EventType.OFFERED.value: "interaction offered after an expiry",
    EventType.ASSIGNED.value: "interaction assigned after an expiry",
}


class Delivery(NamedTuple):
    """One per message, so a tuple (made far faster than a frozen dataclass)."""

    kind: CommandKind
    message: AbstractIncomingMessage
    intake: Intake | RefusedDelivery  # its properties and headers, read once on arrival

    @property
    def alone(self) -> bool:
        """A suspect: routed in a batch of its own (worker/parse.py::is_suspect)."""
        return self.intake.suspect


@dataclass(frozen=True)
class PipelineConfig:
    db_retry_attempts: int = 6
    phone_region: str | None = None  # DEFAULT_PHONE_REGION
    # A message whose dead letter the broker could not store goes back to its queue this
    # much later (not at once: interactions.dead may take a while to come back).
    unstored_letter_backoff_s: float = 0.5


@dataclass
class RoutedBatch:
    """A batch after its transaction committed: what to dead-letter, publish and ack."""

    deliveries: Sequence[Delivery]
    outcome: RoutingOutcome
    refused: dict[int, Refused]
    started: float
    event_ids: list[str]  # of `outcome.events`, listed once for the ledger
    span: Any = None  # the batch's OpenTelemetry span while tracing is on (messaging.tracing)
    unstored: set[int] = field(default_factory=set)  # refused, but no dead letter: not acked


class BatchProcessor:
    """The stages of a batch. `route` is the database runner and runs one batch at a time;
    `send` starts every publish at once and in order; `settle` awaits the confirms and acks.
    The worker overlaps them: batch N+1 is routed while batch N waits for its confirms.
    Each stage tells the `ledger` what became of the batch's events.
    """

    def __init__(
        self,
        transactions: TransactionRunner,
        publisher: EventPublisher,
        rng: Random,
        config: PipelineConfig,
        metrics: WorkerMetrics,
        ledger: ConfirmLedger,
        owner: str | None = None,
    ) -> None:
        self.transactions = transactions
        self.publisher = publisher
        self.rng = rng
        self.config = config
        self.metrics = metrics
        self.ledger = ledger
        self.owner = owner  # this process's outbox owner id: its relay answers for the events

    async def route(self, deliveries: Sequence[Delivery]) -> RoutedBatch:
        """Parse and route in one transaction, which also records earlier batches' confirms."""
        started = time.perf_counter()
        attributes = {"messaging.batch.message_count": len(deliveries)}
        with tracing.span("leadrouter.batch", kind="consumer", attributes=attributes) as span:
            routed = await self._route_batch(deliveries, started)
            routed.span = span
            return routed

    async def _route_batch(self, deliveries: Sequence[Delivery], started: float) -> RoutedBatch:
        requests, refused = self._parse(deliveries)
        to_record = self.ledger.take_confirmed()
        try:
            if tracing.active():  # one span per traced command: its events' parent
                with tracing.command_spans(requests) as continued:
                    outcome, recorded = await self._route(continued, to_record)
            else:
                outcome, recorded = await self._route(requests, to_record)
        except BaseException:
            self.ledger.not_recorded(to_record)
            raise
        if recorded:
            self.ledger.recorded(to_record)
        else:
            self.ledger.not_recorded(to_record)
        event_ids = [event.event_id for event in outcome.events]
        self.ledger.routed(event_ids)
        refused.update({k: r for k, r in outcome.results.items() if isinstance(r, Refused)})
        return RoutedBatch(deliveries, outcome, refused, started, event_ids)

    def send(self, routed: RoutedBatch) -> "asyncio.Future[list[None]]":
        """Start every dead letter and event publish now, in order; resolves when all confirmed."""
        publishes = [self._dead_letter(routed, k, refusal) for k, refusal in routed.refused.items()]
        publishes += [self.publisher.publish_event(event) for event in routed.outcome.events]
        confirmed = asyncio.gather(*(asyncio.ensure_future(p) for p in publishes))
        if routed.span is not None:  # tracing on: a span from now until every confirm
            span = tracing.start_span(
                "leadrouter.publish",
                parent=routed.span,
                kind="producer",
                attributes={"messaging.batch.message_count": len(publishes)},
            )
            confirmed.add_done_callback(lambda done: _end_publish_span(span, done))
        return confirmed

    async def _dead_letter(self, routed: RoutedBatch, key: int, refusal: Refused) -> None:
        """A letter the broker could not store leaves its original unacked (`unstored`)."""
        message = routed.deliveries[key].message
        try:
            stored = await self.publisher.dead_letter(message, refusal.reason)
            routed.unstored.discard(key)  # sent again after a publish failure: stored now
        except DeadLetterNotStored as exc:
            routed.unstored.add(key)
            self.metrics.dead_letters_returned.inc()
            log.error(
                "dead letter not stored: interactions.dead is missing or not bound to "
                "interactions.dlx; the message goes back to its queue. Fix: start a worker "
                "(it declares the queue) or declare interactions.dead and bind it",
                message_id=routed.deliveries[key].intake.message_id or None,
                reason=refusal.reason,
                error=one_line(str(exc)),
            )
            return
        if stored is LetterStored.AFTER_RESTORE:
            self.metrics.dead_letters_returned.inc()

    async def _requeue_unstored(self, routed: RoutedBatch) -> None:
        """Before the batch's ack (a `multiple` ack would take them too): back to the queue."""
        if not routed.unstored:
            return
        await asyncio.sleep(self.config.unstored_letter_backoff_s)
        for key in sorted(routed.unstored):
            await routed.deliveries[key].message.nack(requeue=True)

    async def settle(
        self,
        routed: RoutedBatch,
        confirmed: Awaitable[object],
        previous: Awaitable[object] | None = None,
    ) -> None:
        """Ack once the broker has every event, then hand their ids to the ledger to record.

        One `multiple` ack covers the whole batch. That is only safe once every earlier
        delivery is settled, so batches settle in order: `previous` is the batch before.
        On failure the events are abandoned (the relay re-sends them) and the error raised.
        """
        try:
            await self._confirmed_or_sent_again(routed, confirmed)
            if previous is not None:
                with contextlib.suppress(Exception):  # its failure is handled where it happened
                    await previous
            await self._requeue_unstored(routed)
            kept = routed.unstored
            await ack_batch([d for k, d in enumerate(routed.deliveries) if k not in kept])
            self._observe(routed)
        except Exception:
            self.ledger.abandoned(routed.event_ids)
            raise
        self.ledger.confirmed(routed.event_ids)

    async def _confirmed_or_sent_again(
        self, routed: RoutedBatch, confirmed: Awaitable[object]
    ) -> None:
        """A publish-side failure does not return the deliveries: publishing has a connection of
        its own, so while the consume channel still holds them, the batch's dead letters and
        events are sent again (same event ids) once the publish connection is back. Raises the
        last error when the deliveries are gone anyway or the attempts run out."""
        try:
            await confirmed
            return
        except Exception as exc:
            error = exc
        for attempt in range(PUBLISH_ATTEMPTS):
            if not _still_held(routed.deliveries):
                break  # the consume connection went too: the broker redelivers them
            log.warning(
                "batch publish failed; sending it again",
                size=len(routed.deliveries),
                attempt=attempt + 1,
                error=f"{type(error).__name__}: {error}"[:300],
            )
            self.metrics.publishes_retried.inc()
            await asyncio.sleep(min(2.0, 0.05 * 2**attempt))
            try:
                await self.send(routed)
                return
            except Exception as exc:
                error = exc
        raise error

    async def fire_timers(self) -> int:
        """Waiting interactions past their source's SLA, then offers past their deadline: each
        sweep decides and stores its events in one transaction, then they are published like a
        batch's. Driven from the database, so any worker's timer may find them, and each is
        announced once (returns how many events). Two transactions, not one: the SLA sweep
        locks interactions, the expiry locks operators first, as every routing transaction."""

        async def overdue(store: RoutingStore) -> RoutingOutcome:
            return await Router(store, self.rng, self.owner).mark_overdue()

        async def expired(store: RoutingStore) -> RoutingOutcome:
            return await Router(store, self.rng, self.owner).expire_offers()

        sent = 0
        for sweep in (overdue, expired):
            sent += await self._publish_timer_events(await self.transactions.run(sweep))
        if sent:
            await self.record_confirmed()
        return sent

    async def _publish_timer_events(self, outcome: RoutingOutcome) -> int:
        if not outcome.events:
            return 0
        event_ids = [event.event_id for event in outcome.events]
        self.ledger.routed(event_ids)
        try:
            await self.publisher.publish_events(outcome.events)
        except Exception:
            self.ledger.abandoned(event_ids)  # committed: the relay sends them later
            raise
        self.ledger.confirmed(event_ids)
        for event in outcome.events:
            self.metrics.events_published.labels(event.routing_key).inc()
            log.info(
                _TIMER_LOG_LINES.get(event.routing_key, "timer event"),
                event_id=event.event_id,
                routing_key=event.routing_key,
            )
        return len(event_ids)

    async def record_confirmed(self) -> None:
        """Record confirms while no batch comes to carry them, through the same runner."""
        event_ids = self.ledger.take_confirmed()

        async def work(store: RoutingStore) -> None:
            await store.record_published(event_ids, utcnow())

        if not event_ids:
            return
        try:
            await self.transactions.run(work)
        except Exception as exc:
            log.warning("could not record events as published", error=repr(exc)[:300])
            self.ledger.abandoned(event_ids)  # the relay re-sends them with the same event_id
            return
        self.ledger.recorded(event_ids)

    def _parse(self, deliveries: Sequence[Delivery]) -> tuple[list[Request], dict[int, Refused]]:
        requests: list[Request] = []
        refused: dict[int, Refused] = {}
        for key, delivery in enumerate(deliveries):
            parsed = self._parse_one(key, delivery)
            if isinstance(parsed, Refused):
                refused[key] = parsed
            else:
                requests.append(parsed)
        return requests, refused

    def _parse_one(self, key: int, delivery: Delivery) -> Request | Refused:
        """Whatever goes wrong here is this message's refusal: a batch is never sent back
        to the queue because of what one publisher wrote."""
        intake = delivery.intake
        if isinstance(intake, RefusedDelivery):
            return intake
        if intake.reply_to_ignored is not None or intake.traceparent_ignored:
            self._log_ignored(delivery.message, intake)
        try:
            region = self.config.phone_region
            return parse_command(delivery.kind, key, delivery.message.body, intake.envelope, region)
        except Exception as exc:
            log.exception("could not read message", key=key)
            reason = one_line(f"could not read message: {error_summary(exc)}")
            return Refused(reason, RefusalClass.INVALID_BODY)

    def _log_ignored(self, message: AbstractIncomingMessage, intake: Intake) -> None:
        """A `reply_to` the worker must not or cannot publish to (a queue of the service's own,
        a malformed name, a form the broker refuses: messaging/reply_to.py) was dropped from the
        envelope: logged and counted here, the command processed without it; it is never
        stored, so never sent. A `traceparent` that is not W3C's is logged at debug."""
        if (refusal := intake.reply_to_ignored) is not None:
            log.warning(
                _REPLY_TO_IGNORED[refusal],
                reply_to=printable(message.reply_to or "")[:300],
                reason=refusal.value,
                message_id=intake.message_id or "",
            )
            self.metrics.reply_to_ignored.labels(refusal.value).inc()
        if intake.traceparent_ignored:
            raw = (message.headers or {}).get(tracing.TRACEPARENT)
            log.debug(
                "traceparent is not W3C trace context; ignored",
                traceparent=printable(raw if isinstance(raw, str) else repr(raw))[:80],
                message_id=intake.message_id or "",
            )

    async def _route(
        self, requests: Sequence[Request], to_record: Sequence[str] = ()
    ) -> tuple[RoutingOutcome, bool]:
        """Route in one transaction; a permanent failure is isolated by routing one at a time.

        Returns the outcome and whether `to_record` were recorded as published in it.
        """
        if not requests:
            return RoutingOutcome(), False
        try:
            outcome = await retry_transient(
                lambda: self._route_once(requests, to_record),
                attempts=self.config.db_retry_attempts,
                is_transient=is_transient,
                rng=self.rng,
            )
            return outcome, True
        except RetriesExhausted as exc:
            last = error_summary(exc.last)
            reason = f"database unavailable: still failing after {exc.attempts} attempts: {last}"
            return _refuse_all(requests, reason, RefusalClass.DATABASE_UNAVAILABLE), False
        except Exception as exc:
            if len(requests) == 1:
                log.exception("routing failed", key=requests[0].key)
                reason = f"internal error: {error_summary(exc)}"
                return _refuse_all(requests, reason, RefusalClass.INTERNAL_ERROR), False
            log.warning("batch failed, isolating", size=len(requests), error=repr(exc)[:300])
            return await self._route_one_by_one(requests), False

    async def _route_once(
        self, requests: Sequence[Request], to_record: Sequence[str]
    ) -> RoutingOutcome:
        creates = [r for r in requests if isinstance(r, CreateRequest)]
        closes = [r for r in requests if isinstance(r, CloseRequest)]
        accepts = [r for r in requests if isinstance(r, AcceptRequest)]

        async def work(store: RoutingStore) -> RoutingOutcome:
            await store.record_published(to_record, utcnow())
            return await Router(store, self.rng, self.owner).route_batch(creates, closes, accepts)

        with tracing.span("leadrouter.transaction"):
            return await self.transactions.run(work)

    async def _route_one_by_one(self, requests: Sequence[Request]) -> RoutingOutcome:
        merged = RoutingOutcome()
        for request in requests:
            single, _ = await self._route([request])
            merged.results.update(single.results)
            merged.events.extend(single.events)
        return merged

    def _observe(self, routed: RoutedBatch) -> None:
        """Metrics counted once per batch, then one log line per message."""
        elapsed_ms = round((time.perf_counter() - routed.started) * 1000, 2)
        self._count(routed, elapsed_ms / 1000)
        size = len(routed.deliveries)
        for key, delivery in enumerate(routed.deliveries):
            intake = delivery.intake
            result = routed.outcome.results.get(key)
            if key in routed.unstored:
                continue  # logged when its letter came back
            if (refusal := routed.refused.get(key)) is not None:
                log.warning(
                    "message dead-lettered",
                    queue=delivery.kind,
                    message_id=intake.message_id or None,
                    trace_id=intake.trace_id,
                    reason=refusal.reason,
                    reason_class=refusal.kind.value,
                    duration_ms=elapsed_ms,
                )
            elif isinstance(result, Routed):
                log.info(
                    _DONE_LOG_LINES[delivery.kind],
                    interaction_id=result.interaction_id,
                    message_id=intake.message_id,
                    trace_id=intake.trace_id,
                    source_id=result.source_id,
                    operator_id=result.operator_id,
                    status=result.status,
                    replayed=result.replayed,
                    duration_ms=elapsed_ms,
                    batch=size,
                )

    def _count(self, routed: RoutedBatch, elapsed_s: float) -> None:
        m, now, kept = self.metrics, time.time(), routed.unstored
        m.batch_size.observe(len(routed.deliveries))
        m.processing_seconds.observe(elapsed_s)
        tallies = (
            (m.consumed, Counter(d.kind for d in routed.deliveries)),
            (m.events_published, Counter(e.routing_key for e in routed.outcome.events)),
            (
                m.dead_lettered,
                Counter(r.kind.value for k, r in routed.refused.items() if k not in kept),
            ),
            (
                m.routed,
                Counter(r.status for r in routed.outcome.results.values() if isinstance(r, Routed)),
            ),
        )
        for metric, counts in tallies:
            for label, count in counts.items():
                metric.labels(label).inc(count)
        for delivery in routed.deliveries:
            if (sent := delivery.message.timestamp) is not None:
                m.end_to_end_seconds.observe(max(0.0, now - sent.timestamp()))


async def ack_batch(deliveries: Sequence[Delivery]) -> None:
    """Ack every delivery up to the batch's highest tag with one frame, per channel."""
    last_by_channel: dict[int, AbstractIncomingMessage] = {}
    for delivery in deliveries:
        key = id(delivery.message.channel)
        latest = last_by_channel.get(key)
        if latest is None or (delivery.message.delivery_tag or 0) > (latest.delivery_tag or 0):
            last_by_channel[key] = delivery.message
    for message in last_by_channel.values():
        await message.ack(multiple=True)


def _still_held(deliveries: Sequence[Delivery]) -> bool:
    """Whether the deliveries can still be acked: the channel they came on is open."""
    return bool(deliveries) and all(is_held(d) for d in deliveries)


def is_held(delivery: Delivery) -> bool:
    """Whether the channel this delivery came on is still open (else it comes again)."""
    try:
        return not delivery.message.channel.is_closed
    except ChannelInvalidStateError:  # aio-pika's way of saying it is closed
        return False


def _end_publish_span(span: Any, done: "asyncio.Future[list[None]]") -> None:
    error = None if done.cancelled() else done.exception()
    tracing.end_span(span, error)


def _refuse_all(requests: Sequence[Request], reason: str, kind: RefusalClass) -> RoutingOutcome:
    refusal = Refused(one_line(reason), kind)
    return RoutingOutcome(results={r.key: refusal for r in requests})
