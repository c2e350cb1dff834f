"""Prometheus metrics of one API app, on a registry the app owns (no process-global state)."""

import time
from typing import Any

from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http_middleware import HttpMiddleware
from db.load_gauges import LoadGauges
from schemas.prometheus import SECONDS_BUCKETS, MetricSet


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
    """Counts and times every request by its route template, so ids do not explode labels."""

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
        route: Any = scope.get("route")
        template = str(getattr(route, "path", "unmatched"))
        method = str(scope.get("method", ""))
        self.metrics.requests.labels(method, template, str(status)).inc()
        self.metrics.request_seconds.labels(method, template).observe(seconds)
