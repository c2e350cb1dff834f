"""The worker's own HTTP port (METRICS_PORT): Prometheus `/metrics` and a readiness `/health`.

Started around `Worker.run` by `leadrouter worker`; it starts *before* the worker connects, so a
probe sees 503 until the broker and database are both reachable, and it stops after the worker
has drained. Everything is passed in: no module-level registry or server.
"""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from worker.http_server import Handler, Response, TinyHTTPServer
from worker.load_sampler import DEFAULT_INTERVAL_S, LoadSampler
from worker.metrics import WorkerMetrics
from worker.readiness import BrokerState, ReadinessProbe


@contextlib.asynccontextmanager
async def serve_observability(
    broker: BrokerState,
    session_factory: async_sessionmaker[AsyncSession],
    metrics: WorkerMetrics,
    *,
    host: str,
    port: int,
    sample_interval_s: float = DEFAULT_INTERVAL_S,
) -> AsyncIterator[int]:
    """Serve `/metrics` and `/health` on host:port while the block runs; yields the bound port."""
    probe = ReadinessProbe(broker, session_factory)
    server = TinyHTTPServer({"/metrics": _metrics_route(metrics), "/health": _health_route(probe)})
    sampler = LoadSampler(session_factory, metrics, sample_interval_s)
    sampling = asyncio.create_task(sampler.run_forever())
    try:
        yield await server.start(host, port)
    finally:
        await server.stop()
        sampling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampling


def _metrics_route(metrics: WorkerMetrics) -> Handler:
    async def render() -> Response:
        return Response(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)

    return render


def _health_route(probe: ReadinessProbe) -> Handler:
    async def render() -> Response:
        readiness = await probe.check()
        body = json.dumps(readiness.as_dict()).encode()
        return Response(200 if readiness.ok else 503, body, "application/json")

    return render
