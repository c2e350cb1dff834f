"""Is an AMQP connection usable right now? One check for the worker's and the API's `/health`."""

from aio_pika.abc import AbstractChannel, AbstractRobustConnection


def is_connected(
    connection: AbstractRobustConnection | None, channel: AbstractChannel | None = None
) -> bool:
    """Open and not in the middle of a reconnect (a robust connection keeps its object while it
    reconnects, so `is_closed` alone says nothing); the channel too, when one is named."""
    return (
        connection is not None
        and not connection.is_closed
        and connection.connected.is_set()
        and (channel is None or not channel.is_closed)
    )
