"""The compose tests' fixtures: the container runtime for the session, and one docker-compose
project of the repository's own files (image built with the real Dockerfile, `up -d --scale
worker=4`), torn down with `down -v` after the last test of tests/compose, whatever happened.

Skipped, with the reason in one line, only where no container runtime can be set up (not
root and not installed, or the install failed). Measured numbers are printed, written to
`compose-measurements.json` in the stack's folder, and listed at the end of the run.
"""

import json
import os
import secrets
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.compose.runtime import HealthcheckLoop, build_standins, docker_api, runtime_problem
from tests.compose.stack import ComposeStack, torn_down

MEASUREMENTS = pytest.StashKey[dict[str, Any]]()
Measure = Any  # the `measure` fixture: measure(name, value)


@pytest.fixture(scope="session")
def measure(request: pytest.FixtureRequest) -> Measure:
    measured = request.config.stash.setdefault(MEASUREMENTS, {})

    def record(name: str, value: Any) -> None:
        measured[name] = value
        print(f"[compose] {name} = {value}")

    return record


@pytest.fixture(scope="session")
def compose_dir() -> Path:
    """This session's folder for the Podman socket, compose's output and the containers' logs.

    Not pytest's tmp_path: other pytest sessions on the machine prune old basetemp folders,
    socket included, while this one still runs. Kept afterwards as the run's artefact."""
    return Path(tempfile.mkdtemp(prefix="leadrouter-compose-"))


@pytest.fixture(scope="session")
def docker_host(compose_dir: Path, measure: Measure) -> Iterator[str]:
    """DOCKER_HOST of a Podman API service started for this session (stopped at its end)."""
    problem = runtime_problem()
    if problem:
        pytest.skip(f"no container runtime: {problem}")
    started = time.monotonic()
    build_standins()
    measure("standins_s", round(time.monotonic() - started, 1))
    with docker_api(compose_dir) as url:
        yield url


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 now (kept open together, so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def stack_env(docker_host: str) -> dict[str, str]:
    """What docker-compose sees: this run's credentials and host ports, nothing from the caller's
    environment (an AMQP_URL or BATCH_SIZE meant for the other tests) but PATH and HOME."""
    ports = dict(
        zip(
            [
                "RABBITMQ_PORT", "RABBITMQ_MANAGEMENT_PORT", "API_PORT",
                "RABBITMQ_CLUSTER_MANAGEMENT_PORT", "API_CLUSTER_PORT",
                "RABBITMQ_CLUSTER_PORT_1", "RABBITMQ_CLUSTER_PORT_2", "RABBITMQ_CLUSTER_PORT_3",
            ],
            map(str, free_ports(8)),
            strict=True,
        )
    )  # fmt: skip
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "DOCKER_HOST": docker_host,
        "COMPOSE_HTTP_TIMEOUT": "600",
        **ports,
        # Not the defaults: the test also shows that none of these ends up in the image.
        "RABBITMQ_USER": "leadrouter",
        "RABBITMQ_PASSWORD": secrets.token_urlsafe(16),
        "POSTGRES_USER": "leadrouter",
        "POSTGRES_PASSWORD": secrets.token_urlsafe(16),
        "POSTGRES_DB": "leadrouter",
        "API_TOKEN": secrets.token_urlsafe(24),
        "RABBITMQ_ERLANG_COOKIE": secrets.token_urlsafe(24),
    }


@pytest.fixture(scope="package")
def stack(
    docker_host: str,
    compose_dir: Path,
    measure: Measure,
    request: pytest.FixtureRequest,
) -> Iterator[ComposeStack]:
    """The default profile, built and up with four workers, every healthcheck healthy."""
    folder = compose_dir
    project = f"lrtest{uuid.uuid4().hex[:8]}"
    stack = ComposeStack(project, stack_env(docker_host), folder)
    print(f"[compose] project {project}, logs in {folder}")
    with torn_down(stack), HealthcheckLoop(project):
        stack.watch_exits()
        started = time.monotonic()
        stack.compose("build", timeout=1200)
        measure("build_s", round(time.monotonic() - started, 1))
        started = time.monotonic()
        stack.compose("up", "-d", "--scale", "worker=4", timeout=900)
        stack.wait_healthy(within=300)
        measure("up_to_healthy_s", round(time.monotonic() - started, 1))
        stack.follow("worker")
        stack.image = str(stack.inspect(stack.containers("worker")[0])["Image"])
        yield stack
    measure("podman_transient_retries", stack.transient_retries)
    measured = request.config.stash.get(MEASUREMENTS, {})
    (folder / "compose-measurements.json").write_text(json.dumps(measured, indent=2) + "\n")


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    measured = config.stash.get(MEASUREMENTS, {})
    if measured:
        terminalreporter.section("docker-compose (measured)")
        terminalreporter.write_line(json.dumps(measured))


def api_base(stack: ComposeStack) -> str:
    return f"http://127.0.0.1:{stack.env['API_PORT']}"


def api_headers(stack: ComposeStack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.env['API_TOKEN']}"}


def amqp_url(stack: ComposeStack, port_variable: str = "RABBITMQ_PORT") -> str:
    env = stack.env
    user, password = env["RABBITMQ_USER"], env["RABBITMQ_PASSWORD"]
    return f"amqp://{user}:{password}@127.0.0.1:{env[port_variable]}/"
