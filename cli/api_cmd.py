"""`leadrouter api`: check the schema, then serve the FastAPI app on uvicorn until a signal."""

import asyncio

import structlog
import uvicorn

from api.app import create_app
from db.schema_version import SchemaBehindError, ensure_schema_current
from db.session import create_engine
from schemas.settings import Settings

log = structlog.get_logger(__name__)


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
    config = uvicorn.Config(create_app(settings), host=host, port=port, log_config=None)
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1
