"""`API_TOKEN`: every `/api/v1` route and `/metrics` (operator ids and loads) need
`Authorization: Bearer <token>` when it is set.

Checked in middleware, before the body is read, so an unauthenticated caller gets 401 whatever
it sends (FastAPI would report a malformed body first). The comparison is constant-time.
"""

import hmac

from fastapi import params
from fastapi.security import HTTPBearer
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api.http_middleware import HttpMiddleware
from api.routes.params import API_PREFIX, METRICS_PATH


def token_matches(authorization: str | None, expected: bytes) -> bool:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode(), expected)


def _protected(path: str) -> bool:
    return path in (API_PREFIX, METRICS_PATH) or path.startswith(API_PREFIX + "/")


class BearerTokenMiddleware(HttpMiddleware):
    def __init__(self, app: ASGIApp, token: str) -> None:
        super().__init__(app)
        self.expected = token.encode()

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if _protected(scope["path"]):
            authorization = Headers(scope=scope).get("authorization")
            if not token_matches(authorization, self.expected):
                response = JSONResponse(
                    {"detail": "missing or invalid bearer token"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def documented_security(token_set: bool) -> list[params.Depends]:
    """Shows the bearer scheme in `/docs` when a token is configured; enforcement is above."""
    if not token_set:
        return []
    return [params.Security(HTTPBearer(auto_error=False, description="The API_TOKEN value"))]
