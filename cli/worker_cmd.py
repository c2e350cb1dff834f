"""`leadrouter worker`: build the resources, check the schema, run until SIGTERM/SIGINT.

With METRICS_PORT set, the worker also serves Prometheus `/metrics` and a readiness `/health`
on that port for as long as it runs.
"""

import asyncio
import contextlib
import gc
import signal
from collections.abc import AsyncIterator

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.schema_version import SchemaBehindError, ensure_schema_current
from db.session import create_engine, create_session_factory
from messaging import tracing
from messaging.topology import TopologyConflict
from schemas.settings import Settings
from worker.app import Worker
from worker.metrics import WorkerMetrics
from worker.observability import serve_observability

log = structlog.get_logger(__name__)
# This machine only, unless asked: /metrics and /health need no token. docker-compose.yml
# passes `--metrics-host 0.0.0.0` for scrapers and health checks inside its network.
DEFAULT_METRICS_HOST = "127.0.0.1"


async def run_worker(
    settings: Settings, *, burst: bool = False, metrics_host: str = DEFAULT_METRICS_HOST
) -> int:
    tracing.configure("leadrouter-worker")  # spans only with the OpenTelemetry SDK (docs/)
    engine = create_engine(settings.database_url)
    try:
        await ensure_schema_current(engine)
        sessions = create_session_factory(engine)
        metrics = WorkerMetrics()
        worker = Worker(settings, sessions, metrics=metrics)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.request_stop)
        # Everything imported and built so far lives as long as the process: out of the
        # collector's sight, a full collection walks only what the work creates. Measured
        # in the latency bench (bench/README.md), this cut the longest gen-2 pauses.
        gc.freeze()
        async with observed(worker, sessions, settings, metrics_host):
            await worker.run(burst=burst)
        return 0
    except SchemaBehindError as exc:
        log.error(str(exc))
        return 3
    except TopologyConflict as exc:
        log.error(str(exc))
        return 4
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def observed(
    worker: Worker,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    host: str = DEFAULT_METRICS_HOST,
) -> AsyncIterator[None]:
    """The metrics/health server around the worker's run, only when METRICS_PORT is set."""
    if settings.metrics_port is None:
        yield
        return
    async with serve_observability(
        worker, sessions, worker.metrics, host=host, port=settings.metrics_port
    ) as port:
        log.info("metrics and health served", host=host, port=port)
        yield
