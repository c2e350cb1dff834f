"""Prometheus metrics of one API app, on a registry the app owns (no process-global state)."""

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from db.load_gauges import LoadGauges

# Request durations, from a cached read (a millisecond) to a slow change (seconds).
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "leadrouter_api_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.request_seconds = Histogram(
            "leadrouter_api_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.ingress_published = Counter(
            "leadrouter_api_interactions_published",
            "interaction.create messages published for HTTP clients",
            registry=r,
        )
        self.events_published = Counter(
            "leadrouter_api_events_published",
            "Events confirmed by the broker",
            ["type"],
            registry=r,
        )
        self.broker_up = Gauge("leadrouter_api_broker_up", "1 when connected", registry=r)
        self.load = LoadGauges(r)


class RequestMetricsMiddleware:
    """Counts and times every request by its route template, so ids do not explode labels."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
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
