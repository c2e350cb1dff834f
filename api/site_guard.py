"""No web page on another site can make a browser change state here, token or no token.

Browsers send cross-site "simple" requests (a form post, `fetch` with `text/plain` or a typeless
body) without asking first, so without `API_TOKEN` any page a user of this network opens could
close interactions. A state-changing request is refused:

- 403 when the browser says it comes from another site (`Sec-Fetch-Site: cross-site` or
  `same-site`), or sends an `Origin` whose host and port are not the request's `Host`;
- 415 when it has a `Content-Type` other than JSON, or a body without a `Content-Type`.

JSON can only be sent cross-site after a CORS preflight, which this API never grants. Clients
that are not browsers (curl, httpx, bots) send neither header, so bodiless POSTs still work.
"""

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from api.http_middleware import HttpMiddleware

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
FOREIGN_FETCH_SITES = frozenset({"cross-site", "same-site"})


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    maintype, _, subtype = media.partition("/")
    return maintype == "application" and (subtype == "json" or subtype.endswith("+json"))


def has_body(headers: Headers) -> bool:
    """Chunked, or a Content-Length that is not a plain zero (a malformed one counts as a body)."""
    length = headers.get("content-length")
    if headers.get("transfer-encoding") is not None:
        return True
    return length is not None and not (length.isdigit() and int(length) == 0)


def same_origin(origin: str, host: str | None) -> bool:
    """The Origin's host and port equal the Host header's; a Host without a port is taken to
    use the Origin scheme's default port (a TLS proxy in front keeps `Host` as the client sent it).
    """
    if host is None:
        return False
    try:
        source = urlsplit(origin)
        target = urlsplit("//" + host)
        default = DEFAULT_PORTS.get(source.scheme.lower())
        source_port = source.port or default
        target_port = target.port or default
    except ValueError:  # a malformed port
        return False
    return (
        source.hostname is not None
        and source.hostname == target.hostname
        and source_port is not None
        and source_port == target_port
    )


def refusal(headers: Headers) -> JSONResponse | None:
    """Why this state-changing request is refused, as the answer to give; None to let it pass."""
    if headers.get("sec-fetch-site", "").lower() in FOREIGN_FETCH_SITES:
        return _refused(403, "cross-site request refused")
    origin = headers.get("origin")
    if origin is not None and not same_origin(origin, headers.get("host")):
        return _refused(403, "cross-site request refused")
    content_type = headers.get("content-type")
    if content_type is not None and not is_json(content_type):
        return _refused(415, f"Content-Type must be application/json, not {content_type[:100]!r}")
    if content_type is None and has_body(headers):
        return _refused(415, "a request body needs Content-Type: application/json")
    return None


def _refused(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


class SiteGuardMiddleware(HttpMiddleware):
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] in STATE_CHANGING:
            response = refusal(Headers(scope=scope))
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
