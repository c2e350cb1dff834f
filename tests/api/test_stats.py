"""Stats: load per operator, and counts per operator, per source and waiting."""

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.api.helpers import add_operator, add_source, ok, put_weights, route_new

Sessions = async_sessionmaker[AsyncSession]


async def test_operators_load_and_distribution(client: AsyncClient, sessions: Sessions) -> None:
    ann = await add_operator(client, "Ann", load_limit=4)
    idle = await add_operator(client, "Idle", load_limit=0, active=False)
    tg, web = await add_source(client, "tg"), await add_source(client, "web")
    ok(await put_weights(client, tg, {ann: 10}))
    first, *_ = await route_new(sessions, tg, 3)
    await route_new(sessions, web, 2)
    ok(await client.post(f"/interactions/{first}/close"))

    load = ok(await client.get("/stats/operators-load"))
    assert load == {
        "operators": [
            {
                "operator_id": ann,
                "name": "Ann",
                "active": True,
                "current_load": 2,
                "load_limit": 4,
                "load_percentage": 50.0,
            },
            {
                "operator_id": idle,
                "name": "Idle",
                "active": False,
                "current_load": 0,
                "load_limit": 0,
                "load_percentage": 0.0,
            },
        ]
    }
    distribution = ok(await client.get("/stats/distribution"))
    assert distribution == {
        "by_operator": [
            {"operator_id": ann, "name": "Ann", "count": 3},
            {"operator_id": idle, "name": "Idle", "count": 0},
        ],
        "by_source": [
            {"source_id": tg, "identifier": "tg", "count": 3},
            {"source_id": web, "identifier": "web", "count": 2},
        ],
        "waiting_count": 2,
        "overdue_count": 0,
        "offered_count": 0,
    }
