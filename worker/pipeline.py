"""One batch of deliveries: parse, route in one transaction, dead-letter, publish, ack.

Acks come only after the commit and the broker's confirm of every event, so a crash at any
point leaves the deliveries unacked and they come again; `message_id` makes that harmless.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass
from random import Random

import structlog
from aio_pika.abc import AbstractIncomingMessage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.errors import is_transient
from worker.commands import CloseRequest, CreateRequest, Envelope, Refused, Routed, RoutingOutcome
from worker.metrics import WorkerMetrics, reason_label
from worker.parse import CommandKind, parse_command, poison_reason
from worker.publisher import EventPublisher
from worker.relay import mark_published
from worker.retry import RetriesExhausted, retry_transient
from worker.routing import Router

log = structlog.get_logger(__name__)
Request = CreateRequest | CloseRequest


@dataclass(frozen=True)
class Delivery:
    kind: CommandKind
    message: AbstractIncomingMessage


@dataclass(frozen=True)
class PipelineConfig:
    delivery_limit: int = 5
    db_retry_attempts: int = 6


class BatchProcessor:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        publisher: EventPublisher,
        rng: Random,
        config: PipelineConfig,
        metrics: WorkerMetrics,
    ) -> None:
        self.session_factory = session_factory
        self.publisher = publisher
        self.rng = rng
        self.config = config
        self.metrics = metrics

    async def process(self, deliveries: Sequence[Delivery]) -> None:
        started = time.perf_counter()
        requests, refused = self._parse(deliveries)
        outcome = await self._route(requests)
        refused.update({k: r.reason for k, r in outcome.results.items() if isinstance(r, Refused)})
        for key, reason in refused.items():
            await self.publisher.dead_letter(deliveries[key].message, reason)
        await self.publisher.publish_events(outcome.events)
        await self._after_confirm(outcome)
        for delivery in deliveries:
            await delivery.message.ack()
        self._observe(deliveries, outcome, refused, started)

    def _parse(self, deliveries: Sequence[Delivery]) -> tuple[list[Request], dict[int, str]]:
        requests: list[Request] = []
        refused: dict[int, str] = {}
        for key, delivery in enumerate(deliveries):
            message = delivery.message
            self.metrics.consumed.labels(delivery.kind).inc()
            parsed = parse_command(delivery.kind, key, message.body, _envelope(message))
            poison = poison_reason(dict(message.headers or {}), self.config.delivery_limit)
            if poison is not None:
                refused[key] = poison
            elif isinstance(parsed, Refused):
                refused[key] = parsed.reason
            else:
                requests.append(parsed)
        return requests, refused

    async def _route(self, requests: Sequence[Request]) -> RoutingOutcome:
        """Route in one transaction; a permanent failure is isolated by routing one at a time."""
        if not requests:
            return RoutingOutcome()
        try:
            return await retry_transient(
                lambda: self._route_once(requests),
                attempts=self.config.db_retry_attempts,
                is_transient=is_transient,
                rng=self.rng,
            )
        except RetriesExhausted as exc:
            return _refuse_all(requests, f"database unavailable: {exc}")
        except Exception as exc:
            if len(requests) == 1:
                log.exception("routing failed", key=requests[0].key)
                return _refuse_all(requests, f"internal error: {type(exc).__name__}: {exc}"[:500])
            log.warning("batch failed, isolating", size=len(requests), error=repr(exc)[:300])
            return await self._route_one_by_one(requests)

    async def _route_once(self, requests: Sequence[Request]) -> RoutingOutcome:
        creates = [r for r in requests if isinstance(r, CreateRequest)]
        closes = [r for r in requests if isinstance(r, CloseRequest)]
        async with self.session_factory() as session, session.begin():
            return await Router(session, self.rng).route_batch(creates, closes)

    async def _route_one_by_one(self, requests: Sequence[Request]) -> RoutingOutcome:
        merged = RoutingOutcome()
        for request in requests:
            single = await self._route([request])
            merged.results.update(single.results)
            merged.events.extend(single.events)
        return merged

    async def _after_confirm(self, outcome: RoutingOutcome) -> None:
        try:
            await mark_published(self.session_factory, {e.event_id for e in outcome.events})
        except Exception as exc:  # the relay re-sends them later with the same event_id
            log.warning("could not mark events published", error=repr(exc)[:300])
        for event in outcome.events:
            self.metrics.events_published.labels(event.routing_key).inc()

    def _observe(
        self,
        deliveries: Sequence[Delivery],
        outcome: RoutingOutcome,
        refused: dict[int, str],
        started: float,
    ) -> None:
        """One log line per message: what happened to it and how long the batch took."""
        elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
        now = time.time()
        self.metrics.batch_size.observe(len(deliveries))
        self.metrics.processing_seconds.observe(elapsed_ms / 1000)
        for key, delivery in enumerate(deliveries):
            message = delivery.message
            if message.timestamp is not None:
                self.metrics.end_to_end_seconds.observe(
                    max(0.0, now - message.timestamp.timestamp())
                )
            result = outcome.results.get(key)
            if key in refused:
                self.metrics.dead_lettered.labels(reason_label(refused[key])).inc()
                log.warning(
                    "message dead-lettered",
                    queue=delivery.kind,
                    message_id=message.message_id,
                    reason=refused[key],
                    duration_ms=elapsed_ms,
                )
            elif isinstance(result, Routed):
                self.metrics.routed.labels(result.status).inc()
                log.info(
                    f"interaction {delivery.kind}d",
                    interaction_id=result.interaction_id,
                    message_id=message.message_id,
                    source_id=result.source_id,
                    operator_id=result.operator_id,
                    status=result.status,
                    replayed=result.replayed,
                    duration_ms=elapsed_ms,
                    batch=len(deliveries),
                )


def _envelope(message: AbstractIncomingMessage) -> Envelope:
    return Envelope(message.message_id, message.correlation_id, message.reply_to)


def _refuse_all(requests: Sequence[Request], reason: str) -> RoutingOutcome:
    return RoutingOutcome(results={r.key: Refused(reason) for r in requests})
