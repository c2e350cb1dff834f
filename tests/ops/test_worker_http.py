"""The worker's METRICS_PORT: Prometheus /metrics and a readiness /health, on a real worker."""

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cli.worker_cmd import observed
from schemas.settings import Settings
from tests.conftest import running_worker
from tests.ops.conftest import free_port, get, until
from tests.support import seed
from tests.support.amqp import Bot, Inbox
from worker.app import Worker
from worker.observability import serve_observability

Sessions = async_sessionmaker[AsyncSession]


async def test_health_is_503_until_the_worker_is_connected(
    settings: Settings, sessions: Sessions
) -> None:
    idle = Worker(settings, sessions)  # built, never run: no broker connection
    async with serve_observability(idle, sessions, idle.metrics, host="127.0.0.1", port=0) as port:
        response = await get(f"http://127.0.0.1:{port}/health")

    assert response.status_code == 503
    assert response.json() == {"status": "down", "database": "ok", "broker": "down"}


async def test_metrics_count_messages_and_sample_loads(
    sessions: Sessions, worker: Worker, bot: Bot, events: Inbox, dead_letters: Inbox
) -> None:
    source = await seed.add_source(sessions, "telegram")
    ann = await seed.add_operator(sessions, "Ann", 1)
    await seed.set_weights(sessions, source, {ann: 10})
    async with serve_observability(
        worker, sessions, worker.metrics, host="127.0.0.1", port=0, sample_interval_s=0.05
    ) as port:
        health = await get(f"http://127.0.0.1:{port}/health")
        await bot.create("a@example.com", source)
        await bot.create("b@example.com", source)
        await bot.raw("interaction.create", b"{not json")
        await events.take(2)
        await dead_letters.next()

        expected = [
            'leadrouter_messages_consumed_total{queue="create"} 3.0',
            'leadrouter_interactions_routed_total{status="assigned"} 1.0',
            'leadrouter_interactions_routed_total{status="waiting"} 1.0',
            'leadrouter_messages_dead_lettered_total{reason="not_json"} 1.0',
            "leadrouter_waiting_interactions 1.0",
            f'leadrouter_operator_load{{operator_id="{ann}"}} 1.0',
            f'leadrouter_operator_load_limit{{operator_id="{ann}"}} 1.0',
        ]

        async def all_observed() -> bool:
            # Counters move just after the acks and gauges on the sampler's timer: poll briefly.
            text = (await get(f"http://127.0.0.1:{port}/metrics")).text
            return all(line in text for line in expected)

        await until(all_observed)
        metrics = await get(f"http://127.0.0.1:{port}/metrics")

    assert health.status_code == 200
    assert health.json() == {"status": "ok", "database": "ok", "broker": "ok"}
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    for histogram in ("batch_size", "batch_processing_seconds", "end_to_end_seconds"):
        assert f"leadrouter_{histogram}_count" in text


async def test_unknown_path_is_404(settings: Settings, sessions: Sessions) -> None:
    idle = Worker(settings, sessions)
    async with serve_observability(idle, sessions, idle.metrics, host="127.0.0.1", port=0) as port:
        assert (await get(f"http://127.0.0.1:{port}/nope")).status_code == 404


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_worker_command_serves_on_metrics_port(
    settings: Settings, sessions: Sessions
) -> None:
    """The wiring `leadrouter worker` uses: METRICS_PORT set means /health answers there."""
    port = free_port()
    configured = settings.model_copy(update={"metrics_port": port})
    async with (
        running_worker(configured, sessions) as worker,
        observed(worker, sessions, configured, host="127.0.0.1"),
    ):
        response = await get(f"http://127.0.0.1:{port}/health")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"
