"""A minimal asyncio HTTP/1.1 server for a handful of GET routes.

The worker needs two read-only endpoints (`/metrics`, `/health`) inside its own event loop.
aio-pika brings no web framework, and uvicorn would install its own signal handlers over the
worker's graceful-stop ones, so a few dozen lines of `asyncio.start_server` are the lighter and
safer choice. One request per connection (`Connection: close`), bodies are ignored.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus

REQUEST_TIMEOUT_S = 10.0
MAX_HEADER_LINES = 100


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"

    def encode(self, with_body: bool = True) -> bytes:
        reason = HTTPStatus(self.status).phrase
        head = (
            f"HTTP/1.1 {self.status} {reason}\r\n"
            f"Content-Type: {self.content_type}\r\n"
            f"Content-Length: {len(self.body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        return head.encode("latin-1") + (self.body if with_body else b"")


Handler = Callable[[], Awaitable[Response]]


class TinyHTTPServer:
    def __init__(self, routes: Mapping[str, Handler]) -> None:
        self.routes = dict(routes)
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen and return the bound port (useful with port 0)."""
        self._server = await asyncio.start_server(self._serve_client, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                method, path = await _read_request_head(reader)
                response = await self._respond(method, path)
                writer.write(response.encode(with_body=method != "HEAD"))
                await writer.drain()
        except (TimeoutError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _respond(self, method: str, path: str) -> Response:
        handler = self.routes.get(path.split("?", 1)[0])
        if handler is None:
            return Response(404, b"not found\n")
        if method not in ("GET", "HEAD"):
            return Response(405, b"method not allowed\n")
        return await handler()


async def _read_request_head(reader: asyncio.StreamReader) -> tuple[str, str]:
    """The request line's method and path; the headers are read and discarded."""
    request_line = (await reader.readline()).decode("latin-1").split()
    if len(request_line) < 2:
        raise ValueError("malformed request line")
    for _ in range(MAX_HEADER_LINES):
        if (await reader.readline()) in (b"\r\n", b"\n", b""):
            break
    return request_line[0].upper(), request_line[1]
