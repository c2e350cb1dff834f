"""The MVP spec's repository API, on SQLite and PostgreSQL."""

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.repositories.interactions import InteractionCRUD
from db.repositories.leads import LeadCRUD
from db.repositories.weights import SourceOperatorSettingCRUD
from tests.support import seed

Sessions = async_sessionmaker[AsyncSession]


async def test_candidates_are_active_operators_under_their_limit(sessions: Sessions) -> None:
    source = await seed.add_source(sessions, "tg")
    free = await seed.add_operator(sessions, "free", 2)
    inactive = await seed.add_operator(sessions, "inactive", 2, active=False)
    full = await seed.add_operator(sessions, "full", 0)
    await seed.set_weights(sessions, source, {free: 50, inactive: 30, full: 20})
    async with sessions() as session:
        crud = SourceOperatorSettingCRUD(session)
        assert [s.operator_id for s in await crud.list_by_source(source)] == [free, inactive, full]
        assert await crud.get_candidates_for_distribution(source) == [(free, 50)]


async def test_replace_source_weights_replaces_the_whole_set(sessions: Sessions) -> None:
    source = await seed.add_source(sessions, "tg")
    a, b = await seed.add_operator(sessions, "a", 1), await seed.add_operator(sessions, "b", 1)
    await seed.set_weights(sessions, source, {a: 10, b: 20})
    await seed.set_weights(sessions, source, {b: 70})
    async with sessions() as session:
        rows = await SourceOperatorSettingCRUD(session).list_by_source(source)
    assert [(r.operator_id, r.weight) for r in rows] == [(b, 70)]


async def test_interaction_create_get_and_set_inactive(sessions: Sessions) -> None:
    source = await seed.add_source(sessions, "tg")
    operator = await seed.add_operator(sessions, "a", 1)
    async with sessions() as session, session.begin():
        lead = await LeadCRUD(session).get_or_create_by_email(" A@Example.com ")
        created = await InteractionCRUD(session).create(lead.uuid, source, operator)
    async with sessions() as session, session.begin():
        crud = InteractionCRUD(session)
        assert (await crud.get_by_id(created.id)).status == "assigned"  # type: ignore[union-attr]
        await crud.set_inactive(created.id)
    [row] = await seed.interactions(sessions)
    assert (row.status, row.is_active, row.lead_uuid) == ("closed", False, lead.uuid)
    assert lead.email == "a@example.com"
