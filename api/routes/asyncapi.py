"""`/asyncapi.json`: open (no prefix, no token) like `/health`, the AMQP side's counterpart of
`/openapi.json`, the same document `leadrouter asyncapi` prints."""

from functools import cache

from fastapi import APIRouter, Response

from messaging.asyncapi import asyncapi_json

routes = APIRouter(tags=["asyncapi"])


@cache
def _encoded() -> bytes:
    """Built once per process: the document depends on the code alone."""
    return asyncapi_json().encode()


@routes.get(
    "/asyncapi.json",
    summary="AsyncAPI 3.0 document of the AMQP interface",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}}},
)
async def asyncapi() -> Response:
    """Commands, events, queues and bindings over AMQP, generated from the models."""
    return Response(_encoded(), media_type="application/json")
