"""Where the tests' RabbitMQ and PostgreSQL come from: env, else testcontainers, else an error.

Each test session gets its own RabbitMQ vhost (created with `rabbitmqctl` next to a local
broker) or its own container, so runs never see each other's messages.
"""

import contextlib
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from urllib.parse import quote, urlsplit, urlunsplit

HOW_TO = (
    "set AMQP_URL to a RabbitMQ broker (e.g. amqp://guest:guest@127.0.0.1:5672/) or start a "
    "Docker engine so testcontainers can run one"
)


def docker_available() -> bool:
    try:
        import docker

        docker.from_env().ping()
        return True
    except Exception:
        return False


def with_vhost(amqp_url: str, vhost: str) -> str:
    parts = urlsplit(amqp_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), "", ""))


@contextlib.contextmanager
def session_vhost(amqp_url: str) -> Iterator[str]:
    """A fresh vhost on the broker at `amqp_url`, deleted afterwards."""
    if shutil.which("rabbitmqctl") is None:
        raise RuntimeError(
            "AMQP_URL is set but rabbitmqctl is not on PATH to create a per-run vhost; "
            "run the tests on the broker's machine or unset AMQP_URL to use testcontainers"
        )
    vhost = f"leadrouter-test-{uuid.uuid4().hex[:8]}"
    user = urlsplit(amqp_url).username or "guest"
    _ctl("add_vhost", vhost)
    _ctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
    try:
        yield with_vhost(amqp_url, vhost)
    finally:
        _ctl("delete_vhost", vhost)


def _ctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@contextlib.contextmanager
def rabbitmq_container() -> Iterator[str]:
    from testcontainers.rabbitmq import RabbitMqContainer

    with RabbitMqContainer("rabbitmq:3.13-management") as container:
        host = container.get_container_host_ip()
        port = container.get_exposed_port(5672)
        yield f"amqp://guest:guest@{host}:{port}/"


@contextlib.contextmanager
def postgres_container() -> Iterator[str]:
    from testcontainers.postgres import PostgresContainer

    with PostgresContainer("postgres:16-alpine", driver="asyncpg") as container:
        yield container.get_connection_url()
