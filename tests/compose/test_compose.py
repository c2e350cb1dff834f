"""docker-compose.yml run for real, as ops run it: up with four workers, load, a worker killed,
scaled up and down, the demo, and the cluster profile losing the node the workers use.

The tests share one compose project (tests/compose/conftest.py) and run in file order, each
on its own commands (message_id prefix), so each checks only its own: every published command
became exactly one interaction (the database, by message_id) and its event arrived (the event
stream, deduplicated by event_id; a re-sent event is counted, never a second interaction).
"""

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator

import aio_pika
import httpx
import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.compose.conftest import Measure, amqp_url, api_base, api_headers
from tests.compose.events import CommandEvents, command_events
from tests.compose.stack import ComposeStack, LogLine, parse_time, podman
from tests.reliability.helpers import publish_creates
from tests.support.processes import until

pytestmark = pytest.mark.compose

BURST = 5000
CLUSTER_BURST = 3000
WORKERS = 4


@pytest.fixture(scope="package")
def source_id(stack: ComposeStack) -> int:
    """One source, three operators with room for everything, equal weights (through the API)."""
    with httpx.Client(base_url=api_base(stack), headers=api_headers(stack), timeout=30) as api:
        operators = [
            api.post("/api/v1/operators", json={"name": f"op{n}", "load_limit": 100_000})
            for n in range(3)
        ]
        assert all(r.status_code == 201 for r in operators), [r.text for r in operators]
        source = api.post(
            "/api/v1/sources", json={"identifier": "compose-test", "description": "compose"}
        )
        assert source.status_code == 201, source.text
        weights = [{"operator_id": r.json()["id"], "weight": 10} for r in operators]
        put = api.put(f"/api/v1/sources/{source.json()['id']}/operators", json={"weights": weights})
        assert put.status_code == 200, put.text
        return int(source.json()["id"])


@pytest.fixture
async def broker(stack: ComposeStack) -> AsyncIterator[AbstractRobustConnection]:
    """The test's own connection through the published AMQP port on 127.0.0.1."""
    connection = await aio_pika.connect_robust(amqp_url(stack))
    async with connection:
        yield connection


def emails(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{n}@example.com" for n in range(count)]


async def all_arrive(log: CommandEvents, prefix: str, ids: list[str], within: float) -> None:
    await log.wait(lambda lg: log.commands[prefix] >= len(ids), within, f"events of {prefix}")
    seen = log.of(prefix)
    assert set(seen) == set(ids), f"unexpected message_ids: {sorted(set(seen) - set(ids))[:5]}"
    doubled = {m: i for m, i in seen.items() if len(i) != 1}
    assert not doubled, f"a command became several interactions: {list(doubled.items())[:5]}"


async def until_seen(log: CommandEvents, prefix: str, count: int) -> None:
    await log.wait(lambda lg: log.commands[prefix] >= count, 300, f"{count} events of {prefix}")


def assert_exactly_once_in_db(stack: ComposeStack, prefix: str, count: int) -> None:
    [[rows, distinct]] = stack.psql(
        "SELECT count(*), count(DISTINCT message_id) FROM interactions "
        f"WHERE message_id LIKE '{prefix}-%'"
    )
    assert (int(rows), int(distinct)) == (count, count), f"{prefix}: {rows} rows, {distinct} ids"


def shares(stack: ComposeStack, prefix: str) -> dict[str, int]:
    """How many of this test's commands each worker container routed (its log lines)."""
    return {
        followed.name: len(followed.message_ids(f"{prefix}-"))
        for followed in stack.logged("worker")
    }


def test_up_waits_for_health_and_migrate(stack: ComposeStack) -> None:
    """Every healthcheck healthy; migrate exited 0 before any worker (or the API) started."""
    migrate = stack.containers("migrate", running=False)
    assert len(migrate) == 1, migrate
    state = stack.inspect(migrate[0])["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 0), state
    migrated_at = state["FinishedAt"]
    workers = stack.containers("worker")
    assert len(workers) == WORKERS, workers
    for name in [*workers, *stack.containers("api")]:
        assert stack.health(name) == "healthy", name
        started = stack.inspect(name)["State"]["StartedAt"]
        assert parse_time(started) > parse_time(migrated_at), (
            f"{name} started {started}, migrate ended {migrated_at}"
        )
    for service in ("rabbitmq", "postgres"):
        [name] = stack.containers(service)
        assert stack.health(name) == "healthy", name
    uid = podman("exec", workers[0], "id", "-u").strip()
    assert uid == "10001", uid  # the workers run as the image's unprivileged user


async def test_four_workers_share_5000(
    stack: ComposeStack, source_id: int, broker: AbstractRobustConnection, measure: Measure
) -> None:
    channel = await broker.channel()
    log = await command_events(channel)
    started = time.monotonic()
    ids = await publish_creates(channel, emails("b1", BURST), source_id, "b1")
    await all_arrive(log, "b1", ids, within=300)
    measure("burst1_5000_s", round(time.monotonic() - started, 1))
    assert_exactly_once_in_db(stack, "b1", BURST)

    by_worker = shares(stack, "b1")
    measure("burst1_shares", by_worker)
    measure("burst1_redelivered_events", log.duplicates)
    assert len(by_worker) == WORKERS and all(n > 0 for n in by_worker.values()), by_worker
    assert sum(by_worker.values()) >= BURST  # a redelivered command is logged again (replayed)

    async with httpx.AsyncClient(base_url=api_base(stack), headers=api_headers(stack)) as api:
        stats = (await api.get("/api/v1/stats/distribution")).json()
        load = (await api.get("/api/v1/stats/operators-load")).json()
    [ours] = [s for s in stats["by_source"] if s["source_id"] == source_id]
    assert ours["count"] == BURST, stats
    assert sum(o["count"] for o in stats["by_operator"]) == BURST, stats
    assert stats["waiting_count"] == 0, stats
    assert sum(o["current_load"] for o in load["operators"]) == BURST, load


async def test_worker_killed_mid_burst(
    stack: ComposeStack, source_id: int, broker: AbstractRobustConnection, measure: Measure
) -> None:
    """`kill -9` of one worker container while 5,000 are in flight: nothing lost or doubled."""
    channel = await broker.channel()
    log = await command_events(channel)
    victim = stack.containers("worker")[1]
    publishing = asyncio.create_task(publish_creates(channel, emails("b2", BURST), source_id, "b2"))
    await until_seen(log, "b2", BURST // 5)
    done_before_kill = shares(stack, "b2")[victim]
    await asyncio.to_thread(podman, "kill", "--signal", "KILL", victim)
    ids = await publishing
    await all_arrive(log, "b2", ids, within=300)
    assert_exactly_once_in_db(stack, "b2", BURST)
    assert done_before_kill > 0, f"{victim} had routed none of the burst when it was killed"
    assert 137 in stack.exit_codes(victim), stack.exit_codes(victim)
    measure("burst2_killed_worker", {"victim": victim, "routed_before_kill": done_before_kill})
    measure("burst2_redelivered_events", log.duplicates)


async def test_scale_up_to_6_then_down_to_2(
    stack: ComposeStack, source_id: int, broker: AbstractRobustConnection, measure: Measure
) -> None:
    """The work goes on through both; the four stopped workers exit 0 after draining."""
    stack.compose("up", "-d", "--no-recreate", "--scale", "worker=6")
    stack.wait_healthy(within=180)
    six = stack.containers("worker")
    assert len(six) == 6, six
    stack.follow("worker")

    channel = await broker.channel()
    log = await command_events(channel)
    publishing = asyncio.create_task(publish_creates(channel, emails("b3", BURST), source_id, "b3"))
    await until_seen(log, "b3", BURST // 5)
    at_stop = log.commands["b3"]
    started = time.monotonic()
    await asyncio.to_thread(stack.compose, "up", "-d", "--no-recreate", "--scale", "worker=2")
    measure("scale_down_6_to_2_s", round(time.monotonic() - started, 1))
    ids = await publishing
    await all_arrive(log, "b3", ids, within=300)
    assert_exactly_once_in_db(stack, "b3", BURST)

    two = stack.containers("worker")
    assert len(two) == 2, two
    stopped = sorted(set(six) - set(two))
    assert len(stopped) == 4, stopped
    by_worker = shares(stack, "b3")
    measure("burst3_shares", by_worker)
    assert at_stop < BURST, "the burst was over before the scale-down: nothing was in flight"
    logged = {f.name: f for f in stack.logged("worker")}
    for name in stopped:
        assert stack.exit_codes(name)[-1:] == [0], (name, stack.exit_codes(name))
        assert logged[name].events("worker stopped"), f"{name}: no 'worker stopped' line"
        assert by_worker[name] > 0, f"{name} took no share before it was stopped: {by_worker}"
    measure("burst3_events_when_scaling_down", at_stop)
    measure("burst3_redelivered_events", log.duplicates)


def test_demo_runs_in_the_network(stack: ComposeStack, measure: Measure) -> None:
    """The README's `docker-compose run --rm worker demo -n 200`. On Podman, compose 1.29 links
    a one-off container to the service's running ones and Podman's Docker API has no links
    ("link is not supported"); there the same demo runs through `migrate` (same image and
    environment, no running containers to link), and the measurement says so."""
    started = time.monotonic()
    done = stack.compose("run", "--rm", "worker", "demo", "-n", "200", timeout=300, check=False)
    via = "worker"
    if done.returncode != 0 and "link is not supported" in done.stderr:
        via = "migrate (Podman: no links)"
        done = stack.compose("run", "--rm", "migrate", "demo", "-n", "200", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    measure("demo_200_s", round(time.monotonic() - started, 1))
    measure("demo_run_via", via)
    output = done.stdout + done.stderr
    assert "200" in output, output[-2000:]
    leftovers = [n for n in stack.containers(running=False) if "_run_" in n]
    assert not leftovers, f"run --rm left {leftovers}"


async def test_cluster_profile_survives_losing_the_workers_node(
    stack: ComposeStack, source_id: int, measure: Measure
) -> None:
    started = time.monotonic()
    stack.compose(
        "--profile", "cluster", "up", "-d",
        "--scale", "worker=0", "--scale", "api=0", "--scale", "worker-cluster=3",
        timeout=900,
    )  # fmt: skip
    stack.wait_healthy(within=300)
    measure("cluster_up_to_healthy_s", round(time.monotonic() - started, 1))
    formed = stack.compose("exec", "-T", "rabbitmq-1", "rabbitmqctl", "-q", "cluster_status")
    running = formed.stdout.split("Running Nodes", 1)[-1].split("Versions", 1)[0]
    assert all(f"rabbit@rabbitmq-{n}" in running for n in (1, 2, 3)), formed.stdout

    workers = stack.logged("worker-cluster")
    assert len(workers) == 3, workers
    nodes = Counter(str(line.get("node")) for w in workers for line in w.events("worker started"))
    [(node, count)] = nodes.items()  # every worker on the first node that answered
    assert node.startswith("rabbitmq-1") and count == 3, nodes

    # Half the commands before the kill (a fifth of them routed when it comes), half after it:
    # those can only be routed by workers that moved to another node.
    connection = await aio_pika.connect_robust(amqp_url(stack, "RABBITMQ_CLUSTER_PORT_3"))
    async with connection:
        channel = await connection.channel()
        log = await command_events(channel)
        before = await publish_creates(channel, emails("c1", CLUSTER_BURST // 2), source_id, "c1")
        await until_seen(log, "c1", CLUSTER_BURST // 5)
        in_flight = len(before) - log.commands["c1"]
        killed_at = time.monotonic()
        await asyncio.to_thread(stack.compose, "kill", "rabbitmq-1")
        after = await publish_creates(channel, emails("c2", CLUSTER_BURST // 2), source_id, "c2")
        await all_arrive(log, "c1", before, within=300)
        await all_arrive(log, "c2", after, within=300)
        measure("cluster_after_kill_s", round(time.monotonic() - killed_at, 1))
    assert_exactly_once_in_db(stack, "c1", len(before))
    assert_exactly_once_in_db(stack, "c2", len(after))
    measure("cluster_in_flight_at_kill", in_flight)
    measure("cluster_redelivered_events", log.duplicates)

    def moved() -> list[LogLine]:
        # Each worker has two connections (consume, publish); each reconnects on its own.
        return [
            line
            for w in stack.logged("worker-cluster")
            for line in w.events("broker reconnected")
            if line.get("connection") == "consume"
        ]

    with contextlib.suppress(TimeoutError):  # (a log line is written a moment after the fact)
        await until(lambda: len(moved()) >= 3, within=60, every=1.0)
    nodes_now = Counter(str(line.get("node")) for line in moved())
    assert sum(nodes_now.values()) == 3, f"not every worker moved: {nodes_now}"
    assert not any(node.startswith("rabbitmq-1") for node in nodes_now), nodes_now
    measure("cluster_workers_moved_to", dict(nodes_now))
