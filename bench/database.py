"""Fresh, migrated, seeded databases for a bench stage, optionally with a long history."""

import asyncio
import contextlib
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from db.repositories.operators import OperatorCRUD
from db.repositories.sources import SourceCRUD
from db.repositories.weights import SourceOperatorSettingCRUD
from db.schema_version import upgrade
from db.session import create_engine, create_session_factory

# The user guide's set-up, with limits high enough that every bench interaction is assigned.
OPERATORS = [("Ivan", 50), ("Maria", 30), ("Petr", 20)]
SOURCE_WEIGHTS = {"telegram": [50, 30, 20], "email": [40, 60, 0], "phone": [0, 70, 30]}
UNLIMITED = 1_000_000_000
# `--policies`: every source sticky, with a waiting SLA and offers; nothing waits or expires
# during a stage, so this measures what the policies cost on the path every command takes.
POLICY_WAIT_S = 3600
POLICY_ACCEPT_TIMEOUT_S = 3600


@contextlib.asynccontextmanager
async def fresh_database(kind: str, postgres_admin_url: str | None) -> AsyncIterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="leadrouter-bench-") as directory:
            url = f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
            await asyncio.to_thread(upgrade, url)
            yield url
        return
    if postgres_admin_url is None:
        raise ValueError("PostgreSQL stage needs --postgres-url or TEST_POSTGRES_URL")
    admin = make_url(postgres_admin_url)
    name = f"leadrouter_bench_{uuid.uuid4().hex[:8]}"
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    await _pg_admin(dsn, f'CREATE DATABASE "{name}"')
    url = admin.set(drivername="postgresql+asyncpg", database=name).render_as_string(False)
    try:
        await asyncio.to_thread(upgrade, url)
        yield url
    finally:
        await _pg_admin(dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _pg_admin(dsn: str, statement: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def seed(database_url: str, policies: bool = False) -> list[int]:
    """Three operators, three sources with the guide's weights; returns the source ids.
    With `policies`, each source is sticky and has a waiting SLA and offers."""
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session, session.begin():
            operators = [
                await OperatorCRUD(session).create(n, UNLIMITED, True) for n, _ in OPERATORS
            ]
            source_ids = []
            for identifier, weights in SOURCE_WEIGHTS.items():
                source = await SourceCRUD(session).create(
                    identifier,
                    f"{identifier} bot",
                    sticky=policies,
                    max_wait_s=POLICY_WAIT_S if policies else None,
                    accept_timeout_s=POLICY_ACCEPT_TIMEOUT_S if policies else None,
                )
                await SourceOperatorSettingCRUD(session).replace_source_weights(
                    source.id, {op.id: w for op, w in zip(operators, weights, strict=True) if w}
                )
                source_ids.append(source.id)
            return source_ids
    finally:
        await engine.dispose()


async def preload_history(database_url: str, count: int) -> None:
    """`count` closed interactions, generated inside the database (fast, set-based)."""
    engine = create_engine(database_url)
    series = (
        "generate_series(1, :n) AS s(n)"
        if engine.dialect.name == "postgresql"
        else "(WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < :n) "
        "SELECT n FROM g) AS s"
    )
    now = "CURRENT_TIMESTAMP"
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO leads (uuid, email, created_at) VALUES ('history', "
                    f"'history@example.com', {now})"
                )
            )
            await connection.execute(
                text(
                    "INSERT INTO interactions (lead_uuid, source_id, operator_id, is_active, "
                    "status, created_at, assigned_at, closed_at) SELECT 'history', 1 + (s.n % 3), "
                    f"1 + (s.n % 3), false, 'closed', {now}, {now}, {now} FROM {series}"
                ),
                {"n": count},
            )
    finally:
        await engine.dispose()
