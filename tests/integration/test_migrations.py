"""Migrations: a database written by the previous schema upgrades with its data (e-mails become
contacts), the code refuses a schema that is behind, and the models match the migrations."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from db.models import Base
from db.repositories.leads import LeadCRUD
from db.schema_version import SchemaBehindError, ensure_schema_current, upgrade
from db.session import create_engine, create_session_factory
from schemas.contacts import Contact, ContactKind

PREVIOUS = "0001"
WRITTEN_BY_0001 = [
    "INSERT INTO sources (id, identifier, description, created_at) "
    "VALUES (1, 'web', '', '2026-11-01 10:00:00+00')",
    "INSERT INTO operators (id, name, active, load_limit, current_load, created_at) "
    "VALUES (1, 'Ann', true, 5, 1, '2026-11-01 10:00:00+00')",
    "INSERT INTO leads (uuid, email, created_at) "
    "VALUES ('00000000-0000-7000-8000-000000000001', 'old@example.com', '2026-11-01 10:00:00+00')",
    "INSERT INTO leads (uuid, email, created_at) "
    "VALUES ('00000000-0000-7000-8000-000000000002', 'new@example.com', '2026-11-02 10:00:00+00')",
    "INSERT INTO interactions (id, lead_uuid, source_id, operator_id, is_active, status, "
    "message_id, created_at) VALUES (1, '00000000-0000-7000-8000-000000000001', 1, 1, true, "
    "'assigned', 'm-1', '2026-11-01 10:00:00+00')",
]


@pytest.fixture(params=["sqlite", "postgres"])
async def empty_database(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_admin_url: str | None
) -> AsyncIterator[str]:
    """A database with no schema at all, on each kind."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    if postgres_admin_url is None:
        pytest.skip("PostgreSQL variant: set TEST_POSTGRES_URL")
    name = f"leadrouter_migrate_{uuid.uuid4().hex[:10]}"
    dsn = make_url(postgres_admin_url).set(drivername="postgresql")
    admin = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield make_url(postgres_admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_data_of_the_previous_schema_upgrades_and_emails_become_contacts(
    empty_database: str,
) -> None:
    await asyncio.to_thread(upgrade, empty_database, PREVIOUS)
    engine = create_engine(empty_database)
    try:
        async with engine.begin() as connection:
            for statement in WRITTEN_BY_0001:
                await connection.execute(text(statement))
        with pytest.raises(SchemaBehindError, match="run `leadrouter db upgrade`"):
            await ensure_schema_current(engine)

        await asyncio.to_thread(upgrade, empty_database)
        await ensure_schema_current(engine)

        sessions = create_session_factory(engine)
        async with sessions() as session, session.begin():
            leads = LeadCRUD(session)
            old = await leads.find_by_contact(Contact(ContactKind.EMAIL, "old@example.com"))
            everyone = await leads.list(10, 0)
            contacts = (await session.execute(text("SELECT count(*) FROM lead_contacts"))).scalar()
            priority = (await session.execute(text("SELECT priority FROM interactions"))).scalar()
        assert [lead.uuid for lead in old] == ["00000000-0000-7000-8000-000000000001"]
        assert [(lead.email, lead.phone, lead.handle) for lead in everyone] == [
            ("old@example.com", None, None),
            ("new@example.com", None, None),
        ]
        assert [[(c.kind, c.value) for c in lead.contacts] for lead in everyone] == [
            [("email", "old@example.com")],
            [("email", "new@example.com")],
        ]
        assert (contacts, priority) == (2, 0)
    finally:
        await engine.dispose()


async def test_the_models_match_the_migrations(empty_database: str) -> None:
    await asyncio.to_thread(upgrade, empty_database)
    engine = create_engine(empty_database)

    def differences(connection: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))

    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
    finally:
        await engine.dispose()
