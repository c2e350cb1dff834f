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
            "Commands whose reply_to named one of the service's own queues",
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
