"""The worker's lifecycle: connect, declare, consume in batches, stop gracefully.

Start-up builds every resource and shutdown closes it; nothing lives in module globals.
SIGTERM/SIGINT call `request_stop`: consumers are cancelled, what was already delivered is
processed within the grace period, then the channels and connections close.

Consuming and publishing use separate connections (RabbitMQ's advice): a publish-side failure
(a refused frame, a flow-control block, a lost publish connection) never returns the
deliveries being processed, and the consume side's acks never queue behind a publish burst.
Reply copies have a third connection, opened at the first reply (messaging/replies.py).
"""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from random import Random

import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection
from aio_pika.robust_connection import RobustConnection
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.transactions import TransactionRunner, open_transaction_runner
from messaging import lenient_strings, nodes
from messaging.publisher import EventPublisher
from messaging.replies import ReplySender
from messaging.topology import DEAD_LETTERS, EVENTS, declare_exchange, declare_topology
from schemas.settings import Settings
from worker.confirm_ledger import ConfirmLedger
from worker.intake import read_delivery
from worker.metrics import WorkerMetrics
from worker.parse import CommandKind
from worker.pipeline import BatchProcessor, Delivery, PipelineConfig, RoutedBatch, is_held
from worker.relay import RENEWALS_PER_LEASE, OutboxRelay, lease_for

log = structlog.get_logger(__name__)
# Burst mode ends after this long without a delivery: with prefetch open, an idle consumer
# means the queues are empty (arq's burst), without polling queue depth.
BURST_IDLE_S = 1.0
# Confirmed events are recorded in the next batch's transaction, or after this much idleness.
RECORD_IDLE_S = 0.05
# The worker's connections on the broker (`rabbitmqctl list_connections user_provided_name`):
# "leadrouter worker consume", "… publish", "… reply".
CONNECTION_LABEL = "leadrouter worker"
# Overdue waiting interactions are looked for this often: within a few seconds of the line.
TIMER_INTERVAL_S = 1.0


@dataclass
class _Running:
    processor: BatchProcessor
    relay: OutboxRelay
    consumers: list[tuple[AbstractQueue, str]]  # each work queue with its consumer tag


class Worker:
    def __init__(
        self,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        rng: Random | None = None,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.rng = rng or Random()
        self.metrics = metrics or WorkerMetrics()
        self.buffer: asyncio.Queue[Delivery] = asyncio.Queue()
        self.ready = asyncio.Event()
        self._stop = asyncio.Event()
        self.connection: AbstractRobustConnection | None = None  # consuming (and acks)
        self.publish_connection: AbstractRobustConnection | None = None
        self.replies: ReplySender | None = None
        self._alone_next: Delivery | None = None  # a suspect met while filling a batch
        self.ledger = ConfirmLedger()
        # This process as the owner of the events it writes (`worker/relay.py`): its relay
        # answers for them while its lease lasts, another worker's after.
        self.owner = str(uuid.uuid4())
        self.lease = lease_for(settings.outbox_relay_interval_s)
        # Batches awaiting their confirms and ack, and the newest: acks go out in batch order.
        self._settling: set[asyncio.Task[None]] = set()
        self._last_settle: asyncio.Task[None] | None = None

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self, *, burst: bool = False) -> None:
        """Consume until stopped, or (burst) until the work queues are empty."""
        async with self._started() as running:
            background = [
                asyncio.create_task(self._relay_forever(running.relay)),
                asyncio.create_task(self._lease_forever(running.relay)),
                asyncio.create_task(self._timers_forever(running.processor)),
            ]
            try:
                await self._consume(running, burst)
            finally:
                for task in background:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await self._drain_after_stop(running)
                await self._release(running.relay)

    @contextlib.asynccontextmanager
    async def _started(self) -> AsyncIterator[_Running]:
        lenient_strings.install()
        said_started = False

        def say_stopped() -> None:
            # Only a worker that said it started says it stopped: a failed start stays one line.
            if said_started:
                log.info("worker stopped")

        async with contextlib.AsyncExitStack() as stack:
            stack.callback(say_stopped)  # last: after every connection closed
            # Each: the first node of AMQP_URL that answers; on losing it, the next
            # (messaging/nodes.py). Every loss is logged and counted with its cause.
            consume = await self._connect("consume")
            stack.push_async_callback(consume.close)
            publish = await self._connect("publish")
            stack.push_async_callback(publish.close)
            self.connection, self.publish_connection = consume, publish
            self.replies = ReplySender(
                self.settings.amqp_url,
                label=f"{CONNECTION_LABEL} reply",
                on_ignored=lambda reason: self.metrics.reply_to_ignored.labels(reason).inc(),
                on_failed=lambda cause: self.metrics.replies_failed.labels(cause).inc(),
                on_connection_lost=self._lost("reply"),
            )
            stack.push_async_callback(self.replies.close)
            stack.callback(self.ready.clear)
            transactions = await stack.enter_async_context(
                open_transaction_runner(self.settings.database_url, self.session_factory)
            )
            running = await self._build(consume, publish, self.replies, transactions)
            log.info(
                "worker started",
                owner=self.owner,
                prefetch=self.settings.prefetch_count,
                batch_size=self.settings.batch_size,
                transactions=type(transactions).__name__,
                node=nodes.where(consume.url),
                publish_node=nodes.where(publish.url),
            )
            said_started = True
            self.ready.set()
            yield running

    async def _connect(self, name: str) -> RobustConnection:
        return await nodes.connect_robust(
            self.settings.amqp_url,
            name=name,
            label=f"{CONNECTION_LABEL} {name}",
            on_lost=self._lost(name),
        )

    def _lost(self, name: str) -> Callable[[str], None]:
        return lambda cause: self.metrics.connection_lost.labels(name, cause).inc()

    async def _build(
        self,
        consume: RobustConnection,
        publish: RobustConnection,
        replies: ReplySender,
        transactions: TransactionRunner,
    ) -> _Running:
        consume_channel = await consume.channel()
        await consume_channel.set_qos(prefetch_count=self.settings.prefetch_count)
        topology = await declare_topology(consume_channel)
        publish_channel = await publish.channel(publisher_confirms=True)
        events = await declare_exchange(publish_channel, EVENTS)
        dlx = await declare_exchange(publish_channel, DEAD_LETTERS)
        publisher = EventPublisher(publish_channel, events, dlx, replies)
        settings = self.settings
        config = PipelineConfig(settings.db_retry_attempts, settings.default_phone_region)
        relay = OutboxRelay(self.session_factory, publisher, self.owner, self.lease)
        await relay.register()
        processor = BatchProcessor(
            transactions, publisher, self.rng, config, self.metrics, self.ledger, self.owner
        )
        await relay.publish_pending(older_than=timedelta(0))
        work_queues: list[tuple[AbstractQueue, CommandKind]] = [
            (topology.create_queue, "create"),
            (topology.close_queue, "close"),
            (topology.accept_queue, "accept"),
        ]
        consumers = [
            (queue, await queue.consume(self._enqueue(kind))) for queue, kind in work_queues
        ]
        return _Running(processor, relay, consumers)

    def _enqueue(self, kind: CommandKind) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
        limit = self.settings.delivery_limit

        async def on_message(message: AbstractIncomingMessage) -> None:
            self.buffer.put_nowait(Delivery(kind, message, read_delivery(message, limit)))

        return on_message

    async def _consume(self, running: _Running, burst: bool) -> None:
        """The database runner: route one batch after another while earlier ones await confirms."""
        while not self._stop.is_set():
            # While batches are settling, wake up soon to record their confirms.
            to_record = self.ledger.has_confirmed or self._settling
            idle_s = RECORD_IDLE_S if to_record else (BURST_IDLE_S if burst else None)
            batch = await self._next_batch(idle_s)
            if batch:
                await self._dispatch(running.processor, batch)
            elif self.ledger.has_confirmed:
                await running.processor.record_confirmed()
            elif burst and not self._settling:
                return  # nothing delivered for BURST_IDLE_S while consuming: the queues are empty

    async def _dispatch(self, processor: BatchProcessor, batch: list[Delivery]) -> None:
        # Deliveries of a consume channel that closed meanwhile come again: not worth a routing.
        batch = [d for d in batch if is_held(d)]
        if not batch:
            return
        try:
            routed = await processor.route(batch)
        except Exception as exc:
            await self._return_to_queue(batch, exc)
            return
        confirmed = processor.send(routed)
        task = asyncio.create_task(self._settle(processor, routed, confirmed, self._last_settle))
        self._last_settle = task
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def _settle(
        self,
        processor: BatchProcessor,
        routed: RoutedBatch,
        confirmed: Awaitable[object],
        previous: asyncio.Task[None] | None,
    ) -> None:
        try:
            await processor.settle(routed, confirmed, previous)
        except Exception as exc:
            await self._return_to_queue(routed.deliveries, exc)

    async def _next_batch(self, idle_s: float | None) -> list[Delivery]:
        """Wait for one delivery (or stop), linger briefly, then take what is there.

        A suspect (redelivered DELIVERY_LIMIT times or more) is a batch of its own, in its
        place in the order: if it fails, it fails alone (worker/parse.py::is_suspect)."""
        first: Delivery | None = self._alone_next
        self._alone_next = None
        if first is None:
            first = await self._first_delivery(idle_s)
        if first is None:
            return []
        if first.alone:
            return self._alone(first)
        batch = [first]
        if self.buffer.qsize() < self.settings.batch_size - 1 and self.settings.batch_linger_ms:
            await asyncio.sleep(self.settings.batch_linger_ms / 1000)
        while len(batch) < self.settings.batch_size and not self.buffer.empty():
            delivery = self.buffer.get_nowait()
            if delivery.alone:
                self._alone_next = delivery
                break
            batch.append(delivery)
        return batch

    def _alone(self, delivery: Delivery) -> list[Delivery]:
        message = delivery.message
        log.info(
            "redelivery processed alone",
            queue=delivery.kind,
            message_id=lenient_strings.printable(message.message_id or "") or None,
            delivery_count=(message.headers or {}).get("x-delivery-count"),
        )
        self.metrics.processed_alone.inc()
        return [delivery]

    async def _first_delivery(self, idle_s: float | None) -> Delivery | None:
        if not self.buffer.empty():
            return self.buffer.get_nowait()
        getter = asyncio.ensure_future(self.buffer.get())
        stopper = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait({getter, stopper}, timeout=idle_s, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if getter.done():
            return getter.result()
        getter.cancel()
        return None

    async def _return_to_queue(self, batch: Sequence[Delivery], exc: BaseException) -> None:
        """A batch that failed outside the router's own handling goes back to the queue.

        The redelivery counts towards the delivery limit, so this cannot loop for ever.
        """
        log.error(
            "batch not completed; returning it to the queue",
            size=len(batch),
            error=f"{type(exc).__name__}: {exc}"[:300],
        )
        for delivery in batch:
            with contextlib.suppress(Exception):
                await delivery.message.nack(requeue=True)

    async def _drain_after_stop(self, running: _Running) -> None:
        """Stop new deliveries, finish the ones already here within the grace period."""
        for queue, tag in running.consumers:
            with contextlib.suppress(Exception):
                await queue.cancel(tag)
        try:
            async with asyncio.timeout(self.settings.shutdown_grace_s):
                while not self.buffer.empty() or self._alone_next is not None:
                    await self._dispatch(running.processor, await self._next_batch(idle_s=0))
                if self._settling:
                    await asyncio.wait(set(self._settling))
                await running.processor.record_confirmed()
        except TimeoutError:
            log.warning(
                "grace period over; unfinished deliveries go back to the queue",
                left=self.buffer.qsize(),
            )

    async def _timers_forever(self, processor: BatchProcessor) -> None:
        """Every TIMER_INTERVAL_S: waiting SLAs and offer deadlines checked against the database
        (not this process's memory, so a restarted or another worker fires them just the same)."""
        while True:
            await asyncio.sleep(TIMER_INTERVAL_S)
            try:
                await processor.fire_timers()
            except Exception as exc:
                log.warning("timers failed; will retry", error=repr(exc)[:300])

    async def _lease_forever(self, relay: OutboxRelay) -> None:
        """Renew the outbox lease several times per lease: a renewal that fails or comes late
        now and then costs nothing; only a worker gone for a whole lease loses its events to
        the others' relays. A task of its own, so a long relay pass does not delay it."""
        every = self.lease.total_seconds() / RENEWALS_PER_LEASE
        while True:
            await asyncio.sleep(every)
            try:
                await relay.renew()
            except Exception as exc:
                log.warning("outbox lease renewal failed; will retry", error=repr(exc)[:300])

    async def _release(self, relay: OutboxRelay) -> None:
        try:
            await relay.release()
        except Exception as exc:  # the lease then runs out by itself
            log.warning("could not release the outbox lease", error=repr(exc)[:300])

    async def _relay_forever(self, relay: OutboxRelay) -> None:
        interval = self.settings.outbox_relay_interval_s
        while True:
            await asyncio.sleep(interval)
            try:
                await relay.publish_pending(timedelta(seconds=interval), skip=self.ledger.in_flight)
            except Exception as exc:
                log.warning("outbox relay failed; will retry", error=repr(exc)[:300])
