"""The MVP spec's repository API, on SQLite and PostgreSQL."""

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.repositories.interactions import InteractionCRUD
from db.repositories.leads import LeadCRUD
from db.repositories.weights import SourceOperatorSettingCRUD
from schemas.events import InteractionStatus
from tests.support import seed

Sessions = async_sessionmaker[AsyncSession]
ASSIGNED, WAITING, CLOSED = (
    InteractionStatus.ASSIGNED,
    InteractionStatus.WAITING,
    InteractionStatus.CLOSED,
)


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
    assert await loads(sessions) == {operator: 1}
    async with sessions() as session, session.begin():
        crud = InteractionCRUD(session)
        assert (await crud.get_by_id(created.id)).status == ASSIGNED  # type: ignore[union-attr]
        await crud.set_inactive(created.id)
        assert (await crud.get_by_id(created.id)).status == CLOSED  # type: ignore[union-attr]
    [row] = await seed.interactions(sessions)
    assert (row.status, row.is_active, row.lead_uuid) == (CLOSED, False, lead.uuid)
    assert lead.email == "a@example.com"
    assert await loads(sessions) == {operator: 0}
    async with sessions() as session, session.begin():
        await InteractionCRUD(session).set_inactive(created.id)  # closed already: frees nothing
        await InteractionCRUD(session).set_inactive(424242)  # unknown: nothing to do
    assert await loads(sessions) == {operator: 0}


async def test_crud_keeps_current_load_equal_to_assigned_rows(sessions: Sessions) -> None:
    """The spec's create and set_inactive change assignments, so they change loads too, in
    the caller's transaction: a rolled-back create leaves the load as it was."""
    source = await seed.add_source(sessions, "tg")
    first = await seed.add_operator(sessions, "first", 5)
    second = await seed.add_operator(sessions, "second", 5)
    async with sessions() as session, session.begin():
        lead = await LeadCRUD(session).get_or_create_by_email("a@example.com")
        crud = InteractionCRUD(session)
        made = [
            await crud.create(lead.uuid, source, first),
            await crud.create(lead.uuid, source, first),
            await crud.create(lead.uuid, source, second),
            await crud.create(lead.uuid, source),
        ]
    assert [m.status for m in made] == [ASSIGNED, ASSIGNED, ASSIGNED, WAITING]
    assert await loads(sessions) == {first: 2, second: 1}
    assert await loads(sessions) == await counted(sessions)

    with pytest.raises(RuntimeError, match="roll back"):
        async with sessions() as session, session.begin():
            await InteractionCRUD(session).create(lead.uuid, source, second)
            raise RuntimeError("roll back")
    assert await loads(sessions) == {first: 2, second: 1}

    async with sessions() as session, session.begin():
        crud = InteractionCRUD(session)
        await crud.set_inactive(made[0].id)
        await crud.set_inactive(made[3].id)  # waiting: holds no slot
    assert await loads(sessions) == {first: 1, second: 1}
    assert await loads(sessions) == await counted(sessions)


async def loads(sessions: Sessions) -> dict[int, int]:
    return {i: o.current_load for i, o in (await seed.operators(sessions)).items()}


async def counted(sessions: Sessions) -> dict[int, int]:
    """Assigned rows per operator, every operator listed."""
    counts = await seed.assigned_counts(sessions)
    return {i: counts.get(i, 0) for i in await loads(sessions)}
