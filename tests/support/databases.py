"""Fresh, migrated databases for tests: a copied SQLite template, or a new PostgreSQL database."""

import asyncio
import shutil
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from db.schema_version import upgrade


def migrated_sqlite_template(directory: Path) -> Path:
    template = directory / "template.db"
    upgrade(f"sqlite+aiosqlite:///{template}")
    return template


def sqlite_copy(template: Path, directory: Path) -> str:
    target = directory / f"{uuid.uuid4().hex[:8]}.db"
    shutil.copyfile(template, target)
    return f"sqlite+aiosqlite:///{target}"


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def create_postgres_database(admin_url: str) -> str:
    """CREATE DATABASE with a unique name, migrate it, return its SQLAlchemy URL."""
    name = f"leadrouter_test_{uuid.uuid4().hex[:10]}"
    connection = await asyncpg.connect(_asyncpg_dsn(admin_url))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    await asyncio.to_thread(upgrade, url)
    return url


async def drop_postgres_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    connection = await asyncpg.connect(_asyncpg_dsn(admin_url))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()
