"""A three-node RabbitMQ cluster loses a node with 5,000 interactions in flight; nothing is lost.

Three `leadrouter worker` processes on PostgreSQL get AMQP_URL listing the three nodes. Each
test declares the topology through one chosen node (which so leads `interactions.create`),
watches events from another, and takes a third or the same node away:

- kill -9 of the node the workers are connected to: they move to the next node by themselves;
- kill -9 of the node that leads `interactions.create` (workers elsewhere): a new leader is
  elected, the workers keep their connections and go on;
- a clean stop of the node that both leads and holds the workers, then a start: the workers
  move, the node rejoins and its queue replicas come back online.

Each checks: every interaction processed exactly once (by `message_id`), every committed event
published at least once (the outbox against what the test received), no operator over its
limit (5,000 interactions for 4,500 places and no closes, so each operator's final count is its
highest ever), and measures how long until the event stream's throughput resumed (`pause`;
printed, written to `failover.json` in the test's tmp path, listed at the end of the run).
"""

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel
from sqlalchemy import func, select

from db.models import Interaction, Operator
from messaging.topology import (
    CLOSE_QUEUE,
    CREATE_QUEUE,
    DEAD_QUEUE,
    EVENTS_EXCHANGE,
    QUORUM_GROUP_SIZE,
    declare_topology,
)
from tests.cluster.conftest import Sessions
from tests.cluster.throwaway import Node, ThrowawayCluster
from tests.reliability.conftest import FAST
from tests.reliability.helpers import (
    Event,
    EventLog,
    assert_every_event_published,
    assert_exactly_once,
    one_source,
    publish_creates,
)
from tests.support.processes import WorkerFleet, fleet, worker_env
from tests.support.seed import assigned_counts, operators, scalar

pytestmark = pytest.mark.cluster

MESSAGES = 5000
LIMITS = [1500, 1500, 1500]  # 4,500 places: 500 interactions wait, every operator fills up
DISRUPT_AT = 1000  # interactions announced before the node goes
WORKERS = 3
BIN_S = 0.25  # the event stream is measured in bins this long
# The reliability tests' short timers, the relay at its default interval (with three workers a
# shorter one re-sends many events the others are still confirming: duplicates, not losses),
# and small prefetch and batches: with the defaults (1,024 and 256) each worker holds seconds of
# deliveries, which keep its events flowing through a pause of the broker and hide it from the
# measurement. What is measured is the broker-side pause; a bigger buffer only covers it up.
SETTINGS = {**FAST, "outbox_relay_interval_s": 2.0, "prefetch_count": 100, "batch_size": 50}


@dataclass
class TimedEventLog(EventLog):
    """The reliability tests' event log, plus when each event first arrived (monotonic)."""

    arrivals: list[float] = field(default_factory=list)

    async def record(self, event: Event) -> None:
        if event.event_id not in self.first:
            self.arrivals.append(time.monotonic())
        await super().record(event)


@dataclass(frozen=True)
class Plan:
    """Which node (1-based) does what: `leader` declares the topology (and so leads the queues,
    RabbitMQ places a new queue's leader on the declaring node), the workers' AMQP_URL lists
    `workers` in that order, the test itself talks to `observer`, and `victim` goes away."""

    leader: int
    workers: tuple[int, int, int]
    observer: int
    victim: int


@dataclass
class Run:
    cluster: ThrowawayCluster
    vhost: str
    plan: Plan
    fleet: WorkerFleet
    log: TimedEventLog
    message_ids: list[str] = field(default_factory=list)
    disrupted_at: float = 0.0  # monotonic
    disrupted_wall: float = 0.0  # time.time(), to compare with the workers' log timestamps

    def node(self, number: int) -> Node:
        return self.cluster.nodes[number - 1]


async def test_kill9_of_the_node_the_workers_use_they_move_on_and_lose_nothing(
    cluster: ThrowawayCluster,
    cluster_vhost: str,
    postgres_url: str,
    pg_sessions: Sessions,
    tmp_path: Path,
    record_measurement: Callable[[dict[str, Any]], Path],
) -> None:
    plan = Plan(leader=2, workers=(1, 2, 3), observer=3, victim=1)
    async with scenario(cluster, cluster_vhost, plan, postgres_url, pg_sessions, tmp_path) as run:
        await disrupt(run, lambda: asyncio.to_thread(cluster.kill, run.node(plan.victim)))
        reconnected = await all_moved(run, to=run.node(2))
        await finish(run, pg_sessions)
    record_measurement({**pause(run), "workers_reconnected_after_s": reconnected})


async def test_kill9_of_the_queue_leader_a_new_one_takes_over_and_nothing_is_lost(
    cluster: ThrowawayCluster,
    cluster_vhost: str,
    postgres_url: str,
    pg_sessions: Sessions,
    tmp_path: Path,
    record_measurement: Callable[[dict[str, Any]], Path],
) -> None:
    plan = Plan(leader=1, workers=(2, 3, 1), observer=3, victim=1)
    async with scenario(cluster, cluster_vhost, plan, postgres_url, pg_sessions, tmp_path) as run:
        await disrupt(run, lambda: asyncio.to_thread(cluster.kill, run.node(plan.victim)))
        await finish(run, pg_sessions)
        leader, online = await asyncio.to_thread(cluster.queue_members, cluster_vhost, CREATE_QUEUE)
    assert leader is not run.node(plan.victim) and len(online) == 2
    assert not run.fleet.logged("broker connection lost"), "the workers' node stayed up"
    record_measurement({**pause(run), "new_leader": leader.name})


async def test_a_stopped_node_rejoins_when_started_and_nothing_is_lost(
    cluster: ThrowawayCluster,
    cluster_vhost: str,
    postgres_url: str,
    pg_sessions: Sessions,
    tmp_path: Path,
    record_measurement: Callable[[dict[str, Any]], Path],
) -> None:
    plan = Plan(leader=3, workers=(3, 1, 2), observer=2, victim=3)
    victim = cluster.nodes[plan.victim - 1]
    async with scenario(cluster, cluster_vhost, plan, postgres_url, pg_sessions, tmp_path) as run:
        await disrupt(run, lambda: asyncio.to_thread(cluster.stop, victim))
        reconnected = await all_moved(run, to=run.node(1))
        await finish(run, pg_sessions)
        restart_s = await asyncio.to_thread(cluster.restart, victim)
        await asyncio.to_thread(cluster.await_running, cluster.nodes)
        rejoined = await replicas_back_online(cluster, cluster_vhost)
    record_measurement(
        {
            **pause(run),
            "workers_reconnected_after_s": reconnected,
            "node_restart_s": round(restart_s, 2),
            "replicas_online_after_restart_s": rejoined,
        }
    )


@asynccontextmanager
async def scenario(
    cluster: ThrowawayCluster,
    vhost: str,
    plan: Plan,
    postgres_url: str,
    sessions: Sessions,
    tmp_path: Path,
) -> AsyncIterator[Run]:
    """Topology through `plan.leader`, the event log on `plan.observer`, three workers, and
    5,000 creates published; yields once DISRUPT_AT of them were announced."""
    await declare_through(cluster.nodes[plan.leader - 1], vhost)
    leader, online = await asyncio.to_thread(cluster.queue_members, vhost, CREATE_QUEUE)
    assert leader is cluster.nodes[plan.leader - 1]
    assert len(online) == QUORUM_GROUP_SIZE, "interactions.create is not on every node"
    source, _ = await one_source(sessions, LIMITS)
    connection = await aio_pika.connect(cluster.nodes[plan.observer - 1].url(vhost))
    order = [cluster.nodes[n - 1] for n in plan.workers]
    env = worker_env(cluster.urls(vhost, order), postgres_url, **SETTINGS)
    async with connection, fleet(env, tmp_path) as workers:
        channel = await connection.channel()
        log = await quorum_event_log(channel)
        await asyncio.gather(*(workers.start(f"w{n}") for n in range(1, WORKERS + 1)))
        run = Run(cluster, vhost, plan, workers, log)
        emails = [f"lead{n}@example.com" for n in range(MESSAGES)]
        publishing = asyncio.create_task(
            publish_creates(channel, emails, source, uuid.uuid4().hex[:8])
        )
        try:
            await log.wait(lambda lg: len(lg.interactions()) >= DISRUPT_AT, 60, "the first ones")
            yield run
        finally:
            run.message_ids = await publishing
            for worker in workers.started:  # kept for reading after a failure
                (tmp_path / f"{worker.name}.log").write_text("\n".join(worker.raw) + "\n")
    await assert_exactly_once(sessions, run.message_ids)


async def declare_through(node: Node, vhost: str) -> None:
    connection = await aio_pika.connect(node.url(vhost))
    async with connection:
        await declare_topology(await connection.channel())


async def quorum_event_log(channel: AbstractChannel) -> TimedEventLog:
    """Every event, from a replicated queue of the test's own (a classic queue would die with
    its node, and an exclusive one with the test's connection)."""
    queue = await channel.declare_queue(
        f"test.events.{uuid.uuid4().hex[:8]}", durable=True, arguments={"x-queue-type": "quorum"}
    )
    await queue.bind(await channel.get_exchange(EVENTS_EXCHANGE), "#")
    log = TimedEventLog()
    await log.consume(queue)
    return log


async def disrupt(run: Run, action: Callable[[], Awaitable[None]]) -> None:
    run.disrupted_at, run.disrupted_wall = time.monotonic(), time.time()
    await action()


async def all_moved(run: Run, to: Node) -> float:
    """Each worker logged losing its node and reconnecting to `to`; seconds until the last did."""
    expected = f"127.0.0.1:{to.amqp_port}"
    times = []
    for worker in run.fleet.started:
        line = await worker.wait_for("broker reconnected", within=60)
        assert line["node"] == expected, line
        times.append(datetime.fromisoformat(line["timestamp"]).timestamp() - run.disrupted_wall)
    assert len(run.fleet.logged("broker connection lost")) >= WORKERS
    return round(max(times), 2)


async def finish(run: Run, sessions: Sessions) -> None:
    """Everything announced, every event published, exactly once, no operator over its limit."""
    await run.log.wait(
        lambda lg: len(lg.interactions()) == MESSAGES, 180, "every interaction announced"
    )
    await assert_every_event_published(sessions, run.log, within=30)
    for worker in run.fleet.started:
        assert worker.returncode is None, worker.output()
    assert all(w.events("interaction created") for w in run.fleet.started), "a worker idled"
    counts = await assigned_counts(sessions)
    limits = {
        op.id: (op.load_limit, op.current_load) for op in (await operators(sessions)).values()
    }
    for operator_id, (limit, load) in limits.items():
        assigned = counts.get(operator_id, 0)
        assert assigned <= limit, f"operator {operator_id}: {assigned} assigned, limit {limit}"
        assert load == assigned, f"operator {operator_id}: current_load {load} != {assigned}"
    assert sum(counts.values()) == sum(LIMITS), "capacity left while interactions wait"
    waiting = select(func.count()).select_from(Interaction).where(Interaction.status == "waiting")
    assert await scalar(sessions, waiting) == MESSAGES - sum(LIMITS)
    assert await scalar(sessions, select(func.sum(Operator.current_load))) == sum(LIMITS)


def pause(run: Run) -> dict[str, Any]:
    """How the event stream (first copies) went through the disruption, in 250 ms bins.

    `resumed_after_s`: from the disruption until a bin again carries at least half the rate of
    the second before it, after the last bin of the first 2 s that fell below that (0 when none
    did); one bin's resolution, and an upper bound: a dip of the noisy stream that had nothing
    to do with the disruption counts too. `longest_silence_s`: the longest time without a new
    event that began within 5 s of it. Also the events per second before and after, and the
    bins themselves.
    """
    t0, arrivals = run.disrupted_at, sorted(run.log.arrivals)

    def count(k: int) -> int:
        return sum(1 for t in arrivals if t0 + k * BIN_S <= t < t0 + (k + 1) * BIN_S)

    before = [count(k) for k in range(-4, 0)]
    after = [count(k) for k in range(0, 40)]
    low = sum(before) / len(before) / 2
    dips = [k for k in range(8) if after[k] < low]
    back = next((k for k in range(dips[-1], 40) if after[k] >= low), 40) if dips else None
    points = [t0, *(t for t in arrivals if t >= t0)]
    silences = [b - a for a, b in itertools.pairwise(points) if a <= t0 + 5]
    return {
        "messages": MESSAGES,
        "announced_before": sum(1 for t in arrivals if t < t0),
        "resumed_after_s": 0.0 if back is None else back * BIN_S,
        "longest_silence_s": round(max(silences, default=0.0), 2),
        "events_per_s_before": sum(before),
        "events_per_s_after": sum(after[(back or 0) : (back or 0) + 4]),
        "duplicate_events": run.log.duplicates,
        "per_250ms_from_1s_before": before + after[:20],
    }


async def replicas_back_online(cluster: ThrowawayCluster, vhost: str) -> float:
    """Seconds until every quorum queue of the vhost has all its members online again."""
    began = time.monotonic()
    while True:
        members = [
            await asyncio.to_thread(cluster.queue_members, vhost, name)
            for name in (CREATE_QUEUE, CLOSE_QUEUE, DEAD_QUEUE)
        ]
        if all(len(online) == QUORUM_GROUP_SIZE for _, online in members):
            return round(time.monotonic() - began, 2)
        assert time.monotonic() - began < 60, f"replicas still offline: {members}"
        await asyncio.sleep(0.5)
