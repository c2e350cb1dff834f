"""Operators: CRUD, activation and limits. A change that can free capacity drains waiting ones."""

from fastapi import APIRouter, Response
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import SessionDep, UnitDep
from api.docs import errors
from api.models.common import Conflict, NotFound
from api.models.operators import OperatorCreate, OperatorOut, OperatorPatch
from api.routes.params import API_PREFIX, OperatorId
from api.routes.reads import add_read_routes
from db.models import Operator
from db.repositories.operators import OperatorCRUD
from routing.router import Router

routes = APIRouter(prefix=f"{API_PREFIX}/operators", tags=["operators"])
CAPACITY_FIELDS = {"active", "load_limit"}


async def existing_operator(
    session: AsyncSession, operator_id: int, *, for_update: bool = False
) -> Operator:
    """404 for an unknown id; `for_update` locks the row for the transaction's change."""
    operators = OperatorCRUD(session)
    get = operators.get_for_update if for_update else operators.get_by_id
    operator = await get(operator_id)
    if operator is None:
        raise NotFound(f"operator {operator_id} not found")
    return operator


@routes.post("", status_code=201, response_model=OperatorOut)
async def create_operator(body: OperatorCreate, session: SessionDep) -> OperatorOut:
    """A new operator takes nothing until some source gives it a weight."""
    async with session.begin():
        operator = await OperatorCRUD(session).create(body.name, body.load_limit, body.active)
    return OperatorOut.model_validate(operator)


async def read_operator(operator_id: OperatorId, session: SessionDep) -> Operator:
    async with session.begin():
        return await existing_operator(session, operator_id)


add_read_routes(routes, "operator", OperatorOut, OperatorCRUD, read_operator)


@routes.patch("/{operator_id}", response_model=OperatorOut, responses=errors(404))
async def update_operator(
    operator_id: OperatorId, body: OperatorPatch, unit: UnitDep
) -> OperatorOut:
    """Activating or raising the limit hands waiting interactions over at once, oldest first."""
    changes = body.changes()

    async def apply(router: Router) -> Operator:
        operator = await existing_operator(unit.session, operator_id, for_update=True)
        for field, value in changes.items():
            setattr(operator, field, value)
        if changes.keys() & CAPACITY_FIELDS:
            await router.drain(operator_ids={operator_id})
        return operator

    operator = await unit.routed(apply)
    async with unit.session.begin():
        await unit.session.refresh(operator)
    return OperatorOut.model_validate(operator)


@routes.delete(
    "/{operator_id}", status_code=204, response_class=Response, responses=errors(404, 409)
)
async def delete_operator(operator_id: OperatorId, session: SessionDep) -> Response:
    """Refused while it has assigned (or offered) interactions: close or reassign them first."""
    async with session.begin():
        operator = await existing_operator(session, operator_id, for_update=True)
        if operator.current_load > 0:
            raise Conflict(
                f"operator {operator_id} has {operator.current_load} assigned or offered "
                "interactions"
            )
        await OperatorCRUD(session).delete(operator_id)
    return Response(status_code=204)
