"""`leadrouter worker`: build the resources, check the schema, run until SIGTERM/SIGINT."""

import asyncio
import signal

import structlog

from db.schema_version import SchemaBehindError, ensure_schema_current
from db.session import create_engine, create_session_factory
from schemas.settings import Settings
from worker.app import Worker
from worker.metrics import WorkerMetrics

log = structlog.get_logger(__name__)


async def run_worker(settings: Settings, *, burst: bool = False) -> int:
    engine = create_engine(settings.database_url)
    try:
        await ensure_schema_current(engine)
        metrics = WorkerMetrics()
        worker = Worker(settings, create_session_factory(engine), metrics=metrics)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.request_stop)
        await worker.run(burst=burst)
        return 0
    except SchemaBehindError as exc:
        log.error(str(exc))
        return 3
    finally:
        await engine.dispose()
