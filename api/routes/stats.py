"""Load per operator and how interactions were distributed, for dashboards and the demo."""

from fastapi import APIRouter

from api.deps import SessionDep
from api.models.stats import (
    Distribution,
    OperatorCount,
    OperatorLoad,
    OperatorsLoad,
    SourceCount,
)
from api.routes.params import API_PREFIX
from db.repositories.stats import StatsQueries
from schemas.events import InteractionStatus

routes = APIRouter(prefix=f"{API_PREFIX}/stats", tags=["stats"])


def load_percentage(current_load: int, load_limit: int) -> float:
    return round(100 * current_load / load_limit, 2) if load_limit else 0.0


@routes.get("/operators-load", response_model=OperatorsLoad)
async def operators_load(session: SessionDep) -> OperatorsLoad:
    """`current_load` is the counter the worker routes by (its assigned interactions)."""
    async with session.begin():
        rows = await StatsQueries(session).operator_loads()
    return OperatorsLoad(
        operators=[
            OperatorLoad(
                operator_id=op_id,
                name=name,
                active=active,
                current_load=load,
                load_limit=limit,
                load_percentage=load_percentage(load, limit),
            )
            for op_id, name, active, load, limit in rows
        ]
    )


@routes.get("/distribution", response_model=Distribution)
async def distribution(session: SessionDep) -> Distribution:
    """Counts of all interactions, any status; every operator and source is listed, 0 included."""
    async with session.begin():
        stats = StatsQueries(session)
        by_operator = await stats.interactions_by_operator()
        by_source = await stats.interactions_by_source()
        waiting = await stats.count_with_status(InteractionStatus.WAITING)
        overdue = await stats.count_overdue()
        offered = await stats.count_with_status(InteractionStatus.OFFERED)
    return Distribution(
        by_operator=[OperatorCount(operator_id=i, name=n, count=c) for i, n, c in by_operator],
        by_source=[SourceCount(source_id=i, identifier=s, count=c) for i, s, c in by_source],
        waiting_count=waiting,
        overdue_count=overdue,
        offered_count=offered,
    )
