"""The database-side gauges that both the worker and the API export: the waiting backlog and
each operator's load and limit. One definition and one way to fill them, so the two
processes cannot drift apart in names or meaning."""

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Gauge

from db.repositories.stats import StatsQueries
from schemas.events import InteractionStatus


class LoadGauges:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.waiting = Gauge(
            "leadrouter_waiting_interactions",
            "Interactions waiting for an operator",
            registry=registry,
        )
        self.operator_load = Gauge(
            "leadrouter_operator_load", "Assigned interactions", ["operator_id"], registry=registry
        )
        self.operator_limit = Gauge(
            "leadrouter_operator_load_limit", "Load limit", ["operator_id"], registry=registry
        )
        self.oldest_wait = Gauge(
            "leadrouter_oldest_waiting_seconds",
            "Age of the oldest waiting interaction, per source with any",
            ["source_id"],
            registry=registry,
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
