"""The database-side gauges that both the worker and the API export: the waiting backlog and
each operator's load and limit. One definition and one way to fill them, so the two
processes cannot drift apart in names or meaning."""

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from db.repositories.stats import StatsQueries
from schemas.events import InteractionStatus
from schemas.prometheus import MetricSet


class LoadGauges(MetricSet):
    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(registry)
        self.waiting = self.gauge("waiting_interactions", "Interactions waiting for an operator")
        self.operator_load = self.gauge("operator_load", "Assigned interactions", "operator_id")
        self.operator_limit = self.gauge("operator_load_limit", "Load limit", "operator_id")
        self.oldest_wait = self.gauge(
            "oldest_waiting_seconds",
            "Age of the oldest waiting interaction, per source with any",
            "source_id",
        )

    async def refresh(self, stats: StatsQueries) -> None:
        """Read the numbers the API's /stats reports, then replace the labelled series in one
        synchronous step: a scrape never sees a half set."""
        loads = await stats.operator_loads()
        waiting = await stats.count_with_status(InteractionStatus.WAITING)
        oldest = await stats.oldest_waiting_by_source()
        now = datetime.now(UTC)
        self.waiting.set(waiting)
        self.operator_load.clear()
        self.operator_limit.clear()
        for operator_id, _name, _active, current_load, load_limit in loads:
            self.operator_load.labels(str(operator_id)).set(current_load)
            self.operator_limit.labels(str(operator_id)).set(load_limit)
        self.oldest_wait.clear()
        for source_id, created_at in oldest:
            self.oldest_wait.labels(str(source_id)).set((now - created_at).total_seconds())
