"""`leadrouter api`: check the schema, then serve the FastAPI app on uvicorn until a signal."""

import asyncio
import contextlib
import signal
import socket
from collections.abc import Awaitable, Callable, Iterator

import structlog
import uvicorn

from api.app import create_app
from db.schema_version import SchemaBehindError, ensure_schema_current
from db.session import create_engine
from messaging import tracing
from schemas.settings import Settings

log = structlog.get_logger(__name__)


class _Server(uvicorn.Server):
    """Shuts down gracefully on SIGTERM/SIGINT and exits 0, like the worker.

    Plain uvicorn re-raises the signal after its shutdown, so the process would die of it.
    """

    def __init__(
        self, config: uvicorn.Config, before_shutdown: Callable[[], Awaitable[None]]
    ) -> None:
        super().__init__(config)
        self.before_shutdown = before_shutdown

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Ends the dashboard's event streams first: uvicorn waits for open responses."""
        await self.before_shutdown()
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def _check_schema(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await ensure_schema_current(engine)
    finally:
        await engine.dispose()


def run_api(settings: Settings, host: str, port: int) -> int:
    """Exit 3 on a schema that is behind, like the worker; uvicorn's logs go through structlog."""
    try:
        asyncio.run(_check_schema(settings.database_url))
    except SchemaBehindError as exc:
        log.error(str(exc))
        return 3
    tracing.configure("leadrouter-api")  # spans only with the OpenTelemetry SDK (docs/)
    app = create_app(settings)
    config = uvicorn.Config(app, host=host, port=port, log_config=None)
    server = _Server(config, before_shutdown=app.state.dashboard.close)
    server.run()
    return 0 if server.started else 1
