"""Prometheus metrics of one worker, on a registry of its own (no process-global state)."""

from prometheus_client import CollectorRegistry, Counter, Histogram

from db.load_gauges import LoadGauges

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.consumed = Counter(
            "leadrouter_messages_consumed", "Messages taken from work queues", ["queue"], registry=r
        )
        self.routed = Counter(
            "leadrouter_interactions_routed", "Commands that took effect", ["status"], registry=r
        )
        self.dead_lettered = Counter(
            "leadrouter_messages_dead_lettered",
            "Messages sent to interactions.dead",
            ["reason"],
            registry=r,
        )
        self.reply_to_ignored = Counter(
            "leadrouter_reply_to_ignored",
            "Commands whose reply_to named one of the service's own queues",
            registry=r,
        )
        self.events_published = Counter(
            "leadrouter_events_published", "Events confirmed by the broker", ["type"], registry=r
        )
        self.batch_size = Histogram(
            "leadrouter_batch_size",
            "Deliveries per batch",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
            registry=r,
        )
        self.processing_seconds = Histogram(
            "leadrouter_batch_processing_seconds",
            "Batch: parse, route, commit, publish, ack",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.end_to_end_seconds = Histogram(
            "leadrouter_end_to_end_seconds",
            "Inbound AMQP timestamp to event confirmed",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.load = LoadGauges(r)
