"""Prometheus metrics of one worker, on a registry of its own (no process-global state)."""

from prometheus_client import CollectorRegistry

from db.load_gauges import LoadGauges
from schemas.prometheus import SECONDS_BUCKETS, MetricSet

BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class WorkerMetrics(MetricSet):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        self.consumed = self.counter(
            "messages_consumed", "Messages taken from work queues", "queue"
        )
        self.routed = self.counter("interactions_routed", "Commands that took effect", "status")
        self.dead_lettered = self.counter(
            "messages_dead_lettered", "Messages sent to interactions.dead", "reason"
        )
        self.reply_to_ignored = self.counter(
            "reply_to_ignored",
            "Commands whose reply_to was not used: a queue of the service's own, malformed, "
            "or a form the broker refuses",
            "reason",
        )
        self.replies_failed = self.counter(
            "replies_failed",
            "Reply copies the broker refused or that could not be sent (never retried)",
            "cause",
        )
        self.connection_lost = self.counter(
            "broker_connection_lost",
            "AMQP connections lost (consume, publish or reply), by cause",
            "connection",
            "cause",
        )
        self.processed_alone = self.counter(
            "redeliveries_processed_alone",
            "Redeliveries past DELIVERY_LIMIT processed in a batch of their own",
        )
        self.publishes_retried = self.counter(
            "batch_publishes_retried",
            "Batches whose events or dead letters were sent again after a publish-side failure",
        )
        self.events_published = self.counter(
            "events_published", "Events confirmed by the broker", "type"
        )
        self.batch_size = self.histogram(
            "batch_size", "Deliveries per batch", buckets=BATCH_SIZE_BUCKETS
        )
        self.processing_seconds = self.histogram(
            "batch_processing_seconds",
            "Batch: parse, route, commit, publish, ack",
            buckets=SECONDS_BUCKETS,
        )
        self.end_to_end_seconds = self.histogram(
            "end_to_end_seconds",
            "Inbound AMQP timestamp to event confirmed",
            buckets=SECONDS_BUCKETS,
        )
        self.dead_letters_returned = self.counter(
            "dead_letters_returned",
            "Dead letters the broker returned (interactions.dead missing or unbound)",
        )
        self.load = LoadGauges(self.registry)
