"""Periodic sampling of database-side gauges: the waiting backlog and each operator's load.

These numbers live in the database, not in one worker's memory (N workers share them), so they
are read on a timer instead of being counted as messages pass; every worker reports the same
values, and dashboards should take `max` rather than `sum` across workers.
"""

import asyncio

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.repositories.stats import StatsQueries
from db.session import begin_read_only
from worker.metrics import WorkerMetrics

log = structlog.get_logger(__name__)
DEFAULT_INTERVAL_S = 5.0


class LoadSampler:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        metrics: WorkerMetrics,
        interval_s: float = DEFAULT_INTERVAL_S,
    ) -> None:
        self.session_factory = session_factory
        self.metrics = metrics
        self.interval_s = interval_s

    async def run_forever(self) -> None:
        """Sample now and then every interval; a failed sample is logged, never fatal."""
        while True:
            try:
                await self.sample_once()
            except Exception as exc:
                log.warning("load sample failed; gauges keep their last values", error=repr(exc))
            await asyncio.sleep(self.interval_s)

    async def sample_once(self) -> None:
        async with self.session_factory() as session:
            await begin_read_only(session)
            await self.metrics.load.refresh(StatsQueries(session))
