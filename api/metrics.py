"""Prometheus metrics of one API app, on a registry the app owns (no process-global state)."""

import time

from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http_middleware import HttpMiddleware
from db.load_gauges import LoadGauges
from schemas.prometheus import SECONDS_BUCKETS, MetricSet

# HTTP's own methods: anything else a client invents shares the label "other", and a path no
# route matches shares "unmatched", so no request can add a time series of its own.
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
OTHER_METHOD = "other"
UNMATCHED_ROUTE = "unmatched"


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else OTHER_METHOD


def route_label(scope: Scope) -> str:
    """The matched route's template (`/api/v1/operators/{operator_id}`), never the raw path."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class ApiMetrics(MetricSet):
    subsystem = "api"

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        self.requests = self.counter("requests", "HTTP requests", "method", "route", "status")
        self.request_seconds = self.histogram(
            "request_seconds",
            "HTTP request latency",
            "method",
            "route",
            buckets=SECONDS_BUCKETS,
        )
        self.ingress_published = self.counter(
            "interactions_published",
            "interaction.create messages published for HTTP clients",
        )
        self.events_published = self.counter(
            "events_published", "Events confirmed by the broker", "type"
        )
        self.broker_up = self.gauge("broker_up", "1 when connected")
        self.load = LoadGauges(self.registry)


class RequestMetricsMiddleware(HttpMiddleware):
    """Counts and times every request by its route template and a known method, so neither ids
    nor invented methods or paths add label values."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        super().__init__(app)
        self.metrics = metrics

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_recording)
        finally:
            self._observe(scope, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        template = route_label(scope)
        method = method_label(str(scope.get("method", "")))
        self.metrics.requests.labels(method, template, str(status)).inc()
        self.metrics.request_seconds.labels(method, template).observe(seconds)
