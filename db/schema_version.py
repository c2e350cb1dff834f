"""Alembic wiring: `leadrouter db upgrade`, and the start-up check that the schema is current."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from db.connect_failures import first_connection

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class SchemaBehindError(RuntimeError):
    """The database is not at the code's migration head."""


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply migrations (sync entry point: Alembic's env.py runs its own event loop)."""
    with first_connection(database_url):
        command.upgrade(alembic_config(database_url), revision)


def head_revision(database_url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def ensure_schema_current(engine: AsyncEngine) -> None:
    """Refuse to run on a schema that is behind (or ahead of) this code's migrations."""
    database_url = engine.url.render_as_string(hide_password=False)
    head = head_revision(database_url)
    with first_connection(database_url):
        async with engine.connect() as connection:
            current = await connection.run_sync(_current_revision)
    if current != head:
        raise SchemaBehindError(
            f"database schema is at {current or 'nothing'}, this code needs {head}: "
            "run `leadrouter db upgrade`"
        )
