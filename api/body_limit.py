"""A cap on request bodies, enforced before and while they arrive, never by buffering them.

A declared `Content-Length` over the cap is answered 413 before the app runs. A body without
one (chunked) is counted as it streams: the chunk that crosses the cap ends the request with
413 instead of the app's answer. Either way at most the cap is ever held in memory.
"""

import contextlib

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http_middleware import HttpMiddleware

# A create body may carry a 64 KiB payload (stored as compact UTF-8 JSON); a client that escapes
# non-ASCII as `\uXXXX` sends up to 3x that on the wire, plus the envelope.
MAX_BODY_BYTES = 256 * 1024


class BodyTooLarge(Exception):
    """Raised from `receive` to the app; the middleware answers 413 whatever the app makes of it."""


def too_large(limit: int, size: int | None = None) -> JSONResponse:
    said = f"{size} bytes, " if size is not None else ""
    detail = f"request body is {said}over the {limit} byte limit"
    return JSONResponse({"detail": detail}, status_code=413, headers={"Connection": "close"})


def declared_length(headers: Headers) -> int | None:
    """The Content-Length as a number, or None when absent or not a plain decimal."""
    raw = headers.get("content-length")
    return int(raw) if raw is not None and raw.isdigit() else None


class BodyLimitMiddleware(HttpMiddleware):
    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        super().__init__(app)
        self.limit = limit

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = declared_length(Headers(scope=scope))
        if declared is not None and declared > self.limit:
            await too_large(self.limit, declared)(scope, receive, send)
            return
        await _Counted(self.app, self.limit)(scope, receive, send)


class _Counted:
    """One request whose body is counted as the app reads it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.received = 0
        self.exceeded = False
        self.started = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
                if self.received > self.limit:
                    self.exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            if self.exceeded:  # whatever the app answers to BodyTooLarge, the client gets 413
                if not self.started:
                    self.started = True
                    await too_large(self.limit)(scope, receive, send)
                return
            if message["type"] == "http.response.start":
                self.started = True
            await send(message)

        with contextlib.suppress(BodyTooLarge):  # the answer is ours, below
            await self.app(scope, counting_receive, guarded_send)
        if self.exceeded and not self.started:
            self.started = True
            await too_large(self.limit)(scope, receive, send)
