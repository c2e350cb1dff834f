"""A TCP proxy in front of the test broker: one "node" that can die and come back.

Two proxies to the same RabbitMQ are two nodes of a cluster as far as a client can tell: each
has its own address, and `cut()` does what a killed node does to its clients (the listener is
gone, so new connections are refused, and open ones are reset).
"""

import asyncio
import contextlib
import socket


def reserve_port() -> int:
    """A port nothing listens on right now (for a node that is down from the start)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, port: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.port = port if port is not None else reserve_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pumps: set[asyncio.Task[None]] = set()
        self.accepted = 0
        # Each proxied connection, in the order accepted: (client side, broker side).
        self.links: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []

    async def open(self) -> "TcpProxy":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def cut(self) -> None:
        """Stop listening and reset every open connection, as a kill -9 of the node would."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        for pump in list(self._pumps):
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)

    def reset(self, link: int) -> None:
        """Reset one proxied connection (both sides), as a network cut of that one would."""
        for writer in self.links[link]:
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, upstream_writer))
        self.links.append((writer, upstream_writer))
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            pump = asyncio.create_task(self._pump(source, sink))
            self._pumps.add(pump)
            pump.add_done_callback(self._pumps.discard)

    @staticmethod
    async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        sink.transport.abort()
