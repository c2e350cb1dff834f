"""AMQP_URL as a list of cluster nodes: connect to the first that answers, move on when it goes.

aio-pika 10 and aiormq 7 take one URL, and a robust connection reconnects to that same URL for
ever, so a worker whose node died would wait for that node. The node list is therefore ours:
the first connection tries each node in order, and a robust connection gets a close callback
(aio-pika's public `close_callbacks`) that points its `url` at the next node whenever the
connection is lost or a reconnect attempt fails. aio-pika then does what it does on any
reconnect, now on the next node: it reopens the channels, re-declares their exchanges, queues
and bindings, restores the QoS and the consumers.

It leans on two things aio-pika does not promise in its documentation: each connection attempt
reads `connection.url`, and a failed attempt runs the close callbacks too.
tests/integration/test_broker_nodes.py (two proxies in front of the real broker) and
tests/cluster/ fail if an upgrade changes either.
"""

from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, TypeVar

import aio_pika
import structlog
from aio_pika.abc import AbstractConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from aio_pika.robust_connection import RobustConnection
from yarl import URL

from messaging.connect_failures import NodeFailure, classify
from messaging.connection_loss import describe, loss_cause
from schemas.amqp_nodes import parse_nodes

log = structlog.get_logger(__name__)

# Per node and attempt: a node that is down refuses at once, one cut off by the network
# would otherwise hold the connect for ever.
CONNECT_TIMEOUT_S = 10.0
# Between reconnect attempts (aio-pika's default is 5 s); each attempt tries the next node.
RECONNECT_INTERVAL_S = 1.0

_Connection = TypeVar("_Connection", bound=AbstractConnection)
LossHook = Callable[[str], None]


class NoNodeAnswered(ConnectionError):
    """No node in AMQP_URL accepted a connection; says which failed how (hosts, no passwords).

    `failures` keeps each node's kind of failure, so a start-up line can say what to do."""

    def __init__(self, failures: Sequence[NodeFailure]) -> None:
        self.failures = tuple(failures)
        super().__init__(
            "no node in AMQP_URL answered (" + "; ".join(map(str, self.failures)) + ")"
        )


def where(url: str | URL) -> str:
    """host:port of a node, for logs and errors: never the credentials."""
    parsed = URL(url)
    port = parsed.port or (5671 if parsed.scheme == "amqps" else 5672)
    return f"{parsed.host}:{port}"


async def connect(
    amqp_url: str, *, per_node_s: float = CONNECT_TIMEOUT_S, label: str | None = None
) -> AbstractConnection:
    """A plain connection (the CLI's) to the first node of AMQP_URL that answers.

    `label`: the connection's name in `rabbitmqctl list_connections user_provided_name`."""
    connection, _ = await _first_answer(parse_nodes(amqp_url), partial(_open, label), per_node_s)
    return connection


async def connect_robust(
    amqp_url: str,
    *,
    per_node_s: float = CONNECT_TIMEOUT_S,
    name: str = "broker",
    label: str | None = None,
    on_lost: LossHook | None = None,
) -> RobustConnection:
    """A robust connection to the first node that answers; on losing it, the next that answers.

    `name` tells the worker's connections apart in logs, `label` on the broker
    (`connection_name`); `on_lost` gets each loss's cause."""
    nodes = parse_nodes(amqp_url)
    open_one = partial(_open_robust, label)
    connection, index = await _first_answer(nodes, open_one, per_node_s)
    follow_nodes(connection, nodes, index, name=name, on_lost=on_lost)
    return connection


def _named(label: str | None) -> dict[str, Any]:
    return {} if label is None else {"client_properties": {"connection_name": label}}


async def _open(label: str | None, url: str, attempt_s: float) -> AbstractConnection:
    connection: AbstractConnection = await aio_pika.connect(url, timeout=attempt_s, **_named(label))
    return connection


async def _open_robust(label: str | None, url: str, attempt_s: float) -> RobustConnection:
    # A `reconnect_interval` in the URL's query string wins over ours.
    interval = URL(url).query.get("reconnect_interval", RECONNECT_INTERVAL_S)
    return await aio_pika.connect_robust(
        url, timeout=attempt_s, reconnect_interval=interval, **_named(label)
    )


def follow_nodes(
    connection: RobustConnection,
    nodes: Sequence[str],
    current: int,
    *,
    name: str = "broker",
    on_lost: LossHook | None = None,
) -> None:
    """After each loss or failed reconnect, the next attempt goes to the next node, in a ring.

    A loss is logged once, with its cause (messaging/connection_loss.py), and handed to
    `on_lost`; the failed attempts that follow until the reconnect are logged as such."""
    position = current
    counted: object = None  # the transport whose loss was counted last

    def next_node(_sender: object, *reason: object) -> None:
        nonlocal position, counted
        if connection.close_called:
            return  # closed on purpose: nothing to reconnect
        lost = nodes[position]
        position = (position + 1) % len(nodes)
        connection.url = URL(nodes[position])
        error = reason[0] if reason else None
        cause = loss_cause(error)
        where_to = {"node": where(lost), "next_node": where(nodes[position])}
        # A connection that was open (a transport, even one still restoring its channels and
        # already consuming) is a loss, counted once; an attempt that never connected is not.
        transport = connection.transport
        if transport is None or transport is counted:
            log.warning("broker reconnect attempt failed", connection=name, **where_to)
            return
        counted = transport
        log.warning(
            "broker connection lost",
            connection=name,
            cause=cause,
            error=describe(error),
            **where_to,
        )
        if on_lost is not None:
            on_lost(cause)

    def reconnected(_sender: object, *_args: object) -> None:
        log.info("broker reconnected", connection=name, node=where(connection.url))

    connection.close_callbacks.add(next_node)
    connection.reconnect_callbacks.add(reconnected)


async def _first_answer(
    nodes: Sequence[str],
    open_one: Callable[[str, float], Awaitable[_Connection]],
    per_node_s: float,
) -> tuple[_Connection, int]:
    failures: list[NodeFailure] = []
    for index, url in enumerate(nodes):
        try:
            connection = await open_one(url, per_node_s)
        except CONNECTION_EXCEPTIONS as exc:
            failures.append(classify(url, exc, per_node_s))
            continue
        # Said once connected; when none answers, NoNodeAnswered says it all in one line.
        for failure in failures:
            log.warning("broker node did not answer", node=failure.address, error=failure.detail)
        return connection, index
    raise NoNodeAnswered(failures)
