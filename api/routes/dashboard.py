"""The supervisors' live page: `/dashboard` (HTML, open) and its data under `/api/v1/dashboard`.

The page itself holds no data, so it is served without a token; everything it shows comes from
the snapshot and the event stream below, which need the bearer token when `API_TOKEN` is set.
The page only reads: it sends GET requests and nothing else.
"""

import hashlib
from pathlib import Path
from string import Template
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from api.dashboard.hub import DashboardHub
from api.dashboard.snapshot import build_snapshot
from api.deps import StateDep
from api.docs import errors
from api.models.dashboard import WINDOWS_S, DashboardSnapshot, WindowS
from api.routes.params import API_PREFIX

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
TEMPLATE = Path(__file__).resolve().parent.parent / "templates" / "dashboard.html"
STATIC_PATH = "/dashboard/static"
# No inline script or style, nothing from another origin: the page's own files and its API.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
Window = Annotated[
    WindowS,
    Query(
        alias="window",
        description="seconds of history for the observed shares: 300, 900, 3600 or 86400",
        json_schema_extra={"enum": list(WINDOWS_S)},
    ),
]

routes = APIRouter(prefix=f"{API_PREFIX}/dashboard", tags=["dashboard"])
page_routes = APIRouter(tags=["dashboard"])


def _asset_version() -> str:
    """Changes with the page's own files, so a browser never mixes an old script with a new page."""
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


PAGE = Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
    static="dashboard/static", version=_asset_version()
)


def hub_of(request: Request) -> DashboardHub:
    hub = request.app.state.dashboard
    assert isinstance(hub, DashboardHub)
    return hub


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC_DIR)


@page_routes.get("/dashboard", response_class=HTMLResponse)
async def dashboard_page() -> HTMLResponse:
    """The page; it asks for the API token itself when the API needs one."""
    return HTMLResponse(PAGE, headers=PAGE_HEADERS)


@routes.get("/snapshot", response_model=DashboardSnapshot, responses=errors(401, 503))
async def snapshot(state: StateDep, window_s: Window = 3600) -> DashboardSnapshot:
    """What the page shows, once: the page polls this when the event stream keeps failing."""
    return await build_snapshot(state, window_s)


@routes.get(
    "/stream",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"},
        **errors(401),
    },
)
async def stream(request: Request, state: StateDep, window_s: Window = 3600) -> StreamingResponse:
    """`snapshot` events (the snapshot's JSON) when it changes, checked every second;
    `heartbeat` every few seconds otherwise; `problem` while the database does not answer."""

    async def build(window: int) -> DashboardSnapshot:
        return await build_snapshot(state, window)

    return StreamingResponse(
        hub_of(request).stream(window_s, build),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
