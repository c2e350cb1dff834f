"""AMQP_URL as a list of cluster nodes: how the setting is split and validated.

Here, not in messaging/, so that settings (schemas/settings.py) validate it without importing
the connection code; messaging/nodes.py connects to the nodes this returns.
"""

from urllib.parse import unquote

from yarl import URL

SEPARATOR = ","
SCHEMES = ("amqp://", "amqps://")


def parse_nodes(amqp_url: str) -> tuple[str, ...]:
    """The node URLs of AMQP_URL in order. ValueError with a one-line reason that never quotes
    the value (it holds passwords): each must be amqp(s)://, have a host, and all one vhost."""
    parts = tuple(part.strip() for part in amqp_url.split(SEPARATOR))
    if not all(parts):
        raise ValueError("an empty entry in the comma-separated list of nodes")
    # A raw comma in a password splits the list in the wrong place: say so with any error.
    hint = " (write a comma inside a password as %2C)" if len(parts) > 1 else ""
    vhosts = set()
    for number, part in enumerate(parts, 1):
        where = f"node {number}: " if len(parts) > 1 else ""
        if not part.startswith(SCHEMES):
            raise ValueError(f"{where}must start with amqp:// or amqps://{hint}")
        try:
            url = URL(part)
            host = url.host
            url.port  # noqa: B018 (parsed lazily: a bad port raises here)
        except ValueError:
            raise ValueError(f"{where}not a valid URL{hint}") from None
        if not host:
            raise ValueError(f"{where}has no host{hint}")
        vhosts.add(vhost_of(url))
    if len(vhosts) > 1:
        # The vhost is the deployment: a worker that fails over must find the same queues.
        raise ValueError("every node must name the same vhost")
    return parts


def vhost_of(url: URL) -> str:
    """The vhost as RabbitMQ sees it: the path without its leading slash, `/` when empty."""
    return unquote(url.raw_path[1:]) or "/"
