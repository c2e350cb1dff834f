"""Interactions: HTTP ingress, list and detail, manual assignment and close (via the Router)."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Annotated, Any, cast

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import BaseModel

from api.deps import SessionDep, StateDep, UnitDep
from api.docs import errors
from api.models.interactions import (
    CREATE_BODY_DOCS,
    Accepted,
    AssignRequest,
    InteractionDetail,
    InteractionOut,
    validate_create,
)
from api.routes.params import API_PREFIX, InteractionId, PageQuery, QueryId
from api.routes.sources import existing_source
from api.state import ApiState
from api.unit import UnitOfWork
from db.repositories.interactions import InteractionCRUD, InteractionFilter
from messaging import tracing
from messaging.topology import CREATE_ROUTING_KEY
from routing.outcomes import RoutingOutcome
from routing.router import Router
from schemas.events import InteractionStatus
from schemas.fields import StorableUpTo

routes = APIRouter(prefix=f"{API_PREFIX}/interactions", tags=["interactions"])


class InteractionQuery(BaseModel):
    status: InteractionStatus | None = None
    operator_id: QueryId | None = None
    source_id: QueryId | None = None
    message_id: Annotated[str, StorableUpTo(255)] | None = None

    def as_filter(self) -> InteractionFilter:
        """The query's fields are the filter's keys; one not given does not filter."""
        return cast(InteractionFilter, self.model_dump(exclude_none=True))


@routes.post(
    "",
    status_code=202,
    response_model=Accepted | InteractionDetail,
    responses={201: {"model": InteractionDetail}, **errors(404, 503)},
    openapi_extra=CREATE_BODY_DOCS,
)
async def publish_interaction(
    raw: Annotated[Any, Body()],
    request: Request,
    state: StateDep,
    session: SessionDep,
    response: Response,
    unit: UnitDep,
    wait: Annotated[
        int | None, Query(ge=1, le=30, description="seconds to wait for the outcome")
    ] = None,
) -> Accepted | InteractionDetail:
    """For bots that cannot speak AMQP: publishes an `interaction.create` for the worker.

    The answer's `message_id` is the AMQP message id, so the result can be found later with
    `GET /interactions?message_id=...`. An unknown `source_id` is refused here with 404. With
    `?wait=S` the request waits up to S seconds for the worker's outcome and answers 201 with
    the interaction (operator, status); if S passes first, 202 as without it. A W3C
    `traceparent` (and `tracestate`) request header travels on with the command.
    """
    body = validate_create(raw, state.settings.default_phone_region)
    async with session.begin():
        await existing_source(session, body.source_id)
    message_id = uuid.uuid4().hex
    # What the bot sent, normalised: fields it left out stay out (the worker's defaults apply).
    command = body.model_dump_json(exclude_unset=True).encode()
    traceparent = tracing.parse_traceparent(request.headers.get(tracing.TRACEPARENT))
    tracestate = tracing.parse_tracestate(request.headers.get(tracing.TRACESTATE))
    if wait is None:
        await _publish_create(state, command, message_id, traceparent, tracestate)
        return Accepted(message_id=message_id)
    outcome = state.broker.replies.expect(message_id)
    try:
        await _publish_create(state, command, message_id, traceparent, tracestate, reply=True)
        event = await asyncio.wait_for(asyncio.shield(outcome), wait)
    except TimeoutError:
        return Accepted(message_id=message_id)
    finally:
        state.broker.replies.forget(message_id)
    response.status_code = 201
    return InteractionDetail.model_validate(await unit.interaction_detail(event["interaction_id"]))


async def _publish_create(
    state: ApiState,
    command: bytes,
    message_id: str,
    traceparent: str | None,
    tracestate: str | None,
    *,
    reply: bool = False,
) -> None:
    """The command, continuing the caller's trace (a span of its own while tracing is on)."""
    attributes = {"messaging.message.id": message_id}
    with tracing.span(
        "leadrouter.ingress", traceparent=traceparent, kind="producer", attributes=attributes
    ) as span:
        traceparent = tracing.outgoing_traceparent(traceparent, span)
        headers = tracing.trace_headers(traceparent, tracestate if traceparent else None)
        await state.broker.publish_command(
            CREATE_ROUTING_KEY, command, message_id, reply=reply, headers=headers
        )
    state.metrics.ingress_published.inc()


@routes.get("", response_model=list[InteractionOut])
async def list_interactions(
    session: SessionDep, query: Annotated[InteractionQuery, Query()], page: PageQuery
) -> list[InteractionOut]:
    """Oldest first (by id), filtered by any combination of the parameters."""
    async with session.begin():
        rows = await InteractionCRUD(session).list(query.as_filter(), page.limit, page.offset)
    return [InteractionOut.model_validate(r) for r in rows]


@routes.get("/{interaction_id}", response_model=InteractionDetail, responses=errors(404))
async def get_interaction(interaction_id: InteractionId, unit: UnitDep) -> InteractionDetail:
    return InteractionDetail.model_validate(await unit.interaction_detail(interaction_id))


# The routes that change one interaction through the router and answer its detail.
post_change = partial(routes.post, response_model=InteractionDetail, responses=errors(404, 409))


@post_change("/{interaction_id}/assign")
async def assign_interaction(
    interaction_id: InteractionId, body: AssignRequest, unit: UnitDep
) -> InteractionDetail:
    """Manual assignment: 409 when the operator is inactive or full, or the interaction closed.

    Moving an assigned interaction frees its previous operator for the waiting ones.
    """
    return await _changed(
        unit, interaction_id, lambda r: r.assign(interaction_id, body.operator_id)
    )


@routes.post("/{interaction_id}/close", response_model=InteractionDetail, responses=errors(404))
async def close_interaction(interaction_id: InteractionId, unit: UnitDep) -> InteractionDetail:
    """Exactly what an `interaction.close` message does; closing twice is harmless."""
    return await _changed(unit, interaction_id, lambda router: router.close(interaction_id))


@post_change("/{interaction_id}/accept")
async def accept_interaction(
    interaction_id: InteractionId, body: AssignRequest, unit: UnitDep
) -> InteractionDetail:
    """Exactly what an `interaction.accept` message does: the operator it is offered to takes
    it. 409 with the reason when the offer is another operator's or has expired; accepting
    twice is harmless."""
    return await _changed(
        unit, interaction_id, lambda r: r.accept(interaction_id, body.operator_id)
    )


async def _changed(
    unit: UnitOfWork,
    interaction_id: int,
    change: Callable[[Router], Awaitable[RoutingOutcome]],
) -> InteractionDetail:
    """`change` in one routing transaction (events published after it), then the detail."""
    await unit.routed(change)
    return InteractionDetail.model_validate(await unit.interaction_detail(interaction_id))
