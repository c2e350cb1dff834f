"""Sources and their weights; a new set of weights drains the source's waiting interactions."""

from fastapi import APIRouter
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import SessionDep, UnitDep
from api.docs import errors
from api.models.common import Conflict, NotFound
from api.models.sources import (
    OperatorWeight,
    SourceCreate,
    SourceOut,
    SourcePatch,
    SourceWeights,
)
from api.routes.params import API_PREFIX, SourceId
from api.routes.reads import add_read_routes
from db.models import Source
from db.repositories.operators import OperatorCRUD
from db.repositories.sources import SourceCRUD
from db.repositories.weights import SourceOperatorSettingCRUD
from routing.router import Router
from schemas.fields import MAX_DB_INT

routes = APIRouter(prefix=f"{API_PREFIX}/sources", tags=["sources"])


async def existing_source(session: AsyncSession, source_id: int) -> Source:
    """404 for an unknown id; one beyond the id column's range cannot exist (nor be queried)."""
    source = await SourceCRUD(session).get_by_id(source_id) if source_id <= MAX_DB_INT else None
    if source is None:
        raise NotFound(f"source {source_id} not found")
    return source


@routes.post("", status_code=201, response_model=SourceOut, responses=errors(409))
async def create_source(body: SourceCreate, session: SessionDep) -> SourceOut:
    duplicate = Conflict(f"a source with identifier {body.identifier!r} already exists")
    try:
        async with session.begin():
            sources = SourceCRUD(session)
            if await sources.get_by_identifier(body.identifier) is not None:
                raise duplicate
            source = await sources.create(
                body.identifier,
                body.description,
                sticky=body.sticky,
                max_wait_s=body.max_wait_s,
                accept_timeout_s=body.accept_timeout_s,
            )
    except IntegrityError:  # created concurrently between the check and the insert
        raise duplicate from None
    return SourceOut.model_validate(source)


async def read_source(source_id: SourceId, session: SessionDep) -> Source:
    async with session.begin():
        return await existing_source(session, source_id)


add_read_routes(routes, "source", SourceOut, SourceCRUD, read_source)


@routes.patch("/{source_id}", response_model=SourceOut, responses=errors(404, 409))
async def update_source(source_id: SourceId, body: SourcePatch, session: SessionDep) -> SourceOut:
    """Rules take effect from the next interaction routed; an identifier must stay unique."""
    changes = body.changes()
    duplicate = Conflict(f"a source with identifier {changes.get('identifier')!r} already exists")
    try:
        async with session.begin():
            source = await existing_source(session, source_id)
            other = await SourceCRUD(session).get_by_identifier(str(changes.get("identifier")))
            if "identifier" in changes and other is not None and other.id != source_id:
                raise duplicate
            for field, value in changes.items():
                setattr(source, field, value)
    except IntegrityError:
        raise duplicate from None
    return SourceOut.model_validate(source)


@routes.get("/{source_id}/operators", response_model=SourceWeights, responses=errors(404))
async def get_weights(source_id: SourceId, session: SessionDep) -> SourceWeights:
    """The same shape PUT takes, so a read set can be edited and written back."""
    async with session.begin():
        await existing_source(session, source_id)
        rows = await SourceOperatorSettingCRUD(session).list_by_source(source_id)
    return SourceWeights(weights=[OperatorWeight.model_validate(r) for r in rows])


@routes.put("/{source_id}/operators", response_model=SourceWeights, responses=errors(404))
async def replace_weights(source_id: SourceId, body: SourceWeights, unit: UnitDep) -> SourceWeights:
    """Replaces the whole set (an empty list removes all); unknown operator ids are refused."""
    weights = body.as_dict()

    async def apply(router: Router) -> None:
        await existing_source(unit.session, source_id)
        missing = weights.keys() - await OperatorCRUD(unit.session).existing_ids(weights)
        if missing:
            raise NotFound(f"unknown operator ids: {sorted(missing)}")
        await SourceOperatorSettingCRUD(unit.session).replace_source_weights(source_id, weights)
        await router.drain(source_ids={source_id})

    await unit.routed(apply)
    return SourceWeights(weights=sorted(body.weights, key=lambda w: w.operator_id))
