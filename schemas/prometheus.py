"""Prometheus metrics on a registry of their own (no process-global state), named
`leadrouter_<subsystem>_<name>`: the worker's, the API's and the database's gauges all declare
theirs here, so a declaration says only what is its own."""

from collections.abc import Sequence
from typing import ClassVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

NAMESPACE = "leadrouter"
# Durations in seconds, from a cached read (a millisecond) to a slow batch or change (seconds).
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class MetricSet:
    """Metrics of one part of the service, on the registry given or, without one, a new one."""

    subsystem: ClassVar[str] = ""  # the name's middle part, if the part has one

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()

    def counter(self, name: str, documentation: str, *labels: str) -> Counter:
        return Counter(
            name, documentation, labels, NAMESPACE, self.subsystem, registry=self.registry
        )

    def gauge(self, name: str, documentation: str, *labels: str) -> Gauge:
        return Gauge(name, documentation, labels, NAMESPACE, self.subsystem, registry=self.registry)

    def histogram(
        self, name: str, documentation: str, *labels: str, buckets: Sequence[float]
    ) -> Histogram:
        return Histogram(
            name,
            documentation,
            labels,
            NAMESPACE,
            self.subsystem,
            registry=self.registry,
            buckets=buckets,
        )
