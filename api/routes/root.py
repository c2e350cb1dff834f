"""`GET /`: open (no token), so a person or a probe that opens the bare address learns what
answers there and where to go, instead of a 404."""

from fastapi import APIRouter

from api.models.health import Root

routes = APIRouter(tags=["health"])
MESSAGE = (
    "leadrouter API: the HTTP API is under /api/v1 (documented at /docs), the supervisors' "
    "page at /dashboard, readiness at /health"
)


@routes.get("/", response_model=Root)
async def root() -> Root:
    """Answers without touching the database or the broker (`/health` checks those)."""
    return Root(status="ok", message=MESSAGE)
