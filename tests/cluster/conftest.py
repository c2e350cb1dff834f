"""The cluster tests' fixtures: one throwaway 3-node RabbitMQ cluster for all of tests/cluster.

Started on first use (~11 s for the nodes, ~2-3 s per join), healed before each test (a node a
test killed or stopped is started again and rejoins), torn down after the last cluster test
even when one failed, so the rest of the suite does not share the machine with idle nodes.
Run only these tests with `pytest -m cluster`.
"""

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.session import create_engine, create_session_factory
from tests.cluster.throwaway import ThrowawayCluster, missing_prerequisite

Sessions = async_sessionmaker[AsyncSession]
MEASUREMENTS = pytest.StashKey[list[dict[str, Any]]]()


@pytest.fixture(scope="package")  # one for all of tests/cluster, stopped as soon as it is done
def rabbit_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawayCluster]:
    problem = missing_prerequisite()
    if problem:
        pytest.fail(problem, pytrace=False)  # a failure, not a skip: CI must run these
    cluster = ThrowawayCluster(tmp_path_factory.mktemp("rabbit-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def cluster(rabbit_cluster: ThrowawayCluster) -> ThrowawayCluster:
    """The session's cluster with all three nodes running and joined."""
    rabbit_cluster.heal()
    return rabbit_cluster


@pytest.fixture
def cluster_vhost(cluster: ThrowawayCluster) -> str:
    """A vhost of this test's own on the cluster: fresh queues. Not deleted: the cluster goes
    with all of them, and deleting one while a node is down takes seconds of timeouts."""
    vhost = f"leadrouter-cluster-{uuid.uuid4().hex[:8]}"
    cluster.add_vhost(vhost)
    return vhost


@pytest.fixture
async def pg_sessions(postgres_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(postgres_url, pool_size=4)
    yield create_session_factory(engine)
    await engine.dispose()


@pytest.fixture
def record_measurement(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Keep a test's measured times: printed, written to `failover.json` in its tmp path, and
    listed in the terminal summary at the end of the run (whatever `-s` says)."""

    def record(measured: dict[str, Any]) -> Path:
        measured = {"test": request.node.name, **measured}
        print(json.dumps(measured))
        request.config.stash.setdefault(MEASUREMENTS, []).append(measured)
        path = tmp_path / "failover.json"
        path.write_text(json.dumps(measured, indent=2) + "\n")
        return path

    return record


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    measured = config.stash.get(MEASUREMENTS, [])
    if not measured:
        return
    terminalreporter.section("cluster failover (measured)")
    for entry in measured:
        terminalreporter.write_line(json.dumps(entry))
