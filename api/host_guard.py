"""`API_ALLOWED_HOSTS`: the API answers only requests that name one of its hosts.

Without it, a page on any site could rebind its own DNS name to 127.0.0.1 and then call this
API as a same-origin page: the browser's `Origin` matches its `Host`, so the cross-site guard
lets it through, and with no `API_TOKEN` (the default) nothing else stops it. Such a request
still carries the attacker's name in `Host`, and that is refused here with 400. `/health`
answers any host: probes and load balancers often call it by an address of their own, and it
changes nothing. Websocket handshakes are checked the same way (closed before accepting).
"""

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketClose

from api.routes.params import HEALTH_PATH
from schemas.hosts import host_name

POLICY_VIOLATION = 1008  # the websocket close code for a refused handshake


def refusal_detail(host: str | None, allowed: frozenset[str]) -> str | None:
    """Why a request with this `Host` header is refused; None when its name is allowed."""
    if host is None:
        return "a Host header is required"
    if host_name(host) in allowed:
        return None
    shown = host if len(host) <= 100 else host[:100] + "…"
    return f"Host {shown!r} is not served here: add its name to API_ALLOWED_HOSTS"


class HostGuardMiddleware:
    def __init__(self, app: ASGIApp, allowed: frozenset[str]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and scope["path"] != HEALTH_PATH:
            detail = refusal_detail(Headers(scope=scope).get("host"), self.allowed)
            if detail is not None:
                if scope["type"] == "http":
                    response = JSONResponse({"detail": detail}, status_code=400)
                    await response(scope, receive, send)
                else:
                    await WebSocketClose(POLICY_VIOLATION, "host not allowed")(scope, receive, send)
                return
        await self.app(scope, receive, send)
