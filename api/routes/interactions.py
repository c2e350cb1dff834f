"""Interactions: HTTP ingress, list and detail, manual assignment and close (via the Router)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import SessionDep, StateDep, UnitDep
from api.docs import errors
from api.models.interactions import (
    Accepted,
    AssignRequest,
    CreateInteractionBody,
    InteractionDetail,
    InteractionOut,
)
from api.routes.params import API_PREFIX, InteractionId, PageQuery, QueryId
from api.routes.sources import existing_source
from db.repositories.interactions import InteractionCRUD, InteractionFilter
from messaging.topology import CREATE_ROUTING_KEY
from schemas.events import InteractionStatus
from schemas.fields import StorableText

router = APIRouter(prefix=f"{API_PREFIX}/interactions", tags=["interactions"])


class InteractionQuery(BaseModel):
    status: InteractionStatus | None = None
    operator_id: QueryId | None = None
    source_id: QueryId | None = None
    message_id: Annotated[StorableText, Field(max_length=255)] | None = None

    def as_filter(self) -> InteractionFilter:
        return InteractionFilter(self.status, self.operator_id, self.source_id, self.message_id)


@router.post("", status_code=202, response_model=Accepted, responses=errors(404, 503))
async def publish_interaction(
    body: CreateInteractionBody, state: StateDep, session: SessionDep
) -> Accepted:
    """For bots that cannot speak AMQP: publishes an `interaction.create` for the worker.

    The answer's `message_id` is the AMQP message id, so the result can be found later with
    `GET /interactions?message_id=...`. An unknown `source_id` is refused here with 404.
    """
    async with session.begin():
        await existing_source(session, body.source_id)
    message_id = uuid.uuid4().hex
    await state.broker.publish_command(
        CREATE_ROUTING_KEY, body.model_dump_json().encode(), message_id
    )
    state.metrics.ingress_published.inc()
    return Accepted(message_id=message_id)


@router.get("", response_model=list[InteractionOut])
async def list_interactions(
    session: SessionDep, query: Annotated[InteractionQuery, Query()], page: PageQuery
) -> list[InteractionOut]:
    """Oldest first (by id), filtered by any combination of the parameters."""
    async with session.begin():
        rows = await InteractionCRUD(session).list(query.as_filter(), page.limit, page.offset)
    return [InteractionOut.model_validate(r) for r in rows]


@router.get("/{interaction_id}", response_model=InteractionDetail, responses=errors(404))
async def get_interaction(interaction_id: InteractionId, unit: UnitDep) -> InteractionDetail:
    return InteractionDetail.model_validate(await unit.interaction_detail(interaction_id))


@router.post(
    "/{interaction_id}/assign", response_model=InteractionDetail, responses=errors(404, 409)
)
async def assign_interaction(
    interaction_id: InteractionId, body: AssignRequest, unit: UnitDep
) -> InteractionDetail:
    """Manual assignment: 409 when the operator is inactive or full, or the interaction closed.

    Moving an assigned interaction frees its previous operator for the waiting ones.
    """
    await unit.routed(lambda router: router.assign(interaction_id, body.operator_id))
    return InteractionDetail.model_validate(await unit.interaction_detail(interaction_id))


@router.post("/{interaction_id}/close", response_model=InteractionDetail, responses=errors(404))
async def close_interaction(interaction_id: InteractionId, unit: UnitDep) -> InteractionDetail:
    """Exactly what an `interaction.close` message does; closing twice is harmless."""
    await unit.routed(lambda router: router.close(interaction_id))
    return InteractionDetail.model_validate(await unit.interaction_detail(interaction_id))
