"""The admin and read HTTP API: `create_app(settings)` builds one app with its own resources."""

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from api.auth import BearerTokenMiddleware, documented_security
from api.body_limit import MAX_BODY_BYTES, BodyLimitMiddleware
from api.dashboard.hub import DashboardHub
from api.errors import install_error_handlers
from api.host_guard import HostGuardMiddleware
from api.lifespan import lifespan
from api.metrics import ApiMetrics, RequestMetricsMiddleware
from api.routes import (
    asyncapi,
    dashboard,
    health,
    interactions,
    leads,
    metrics,
    operators,
    root,
    sources,
    stats,
)
from api.site_guard import SiteGuardMiddleware
from schemas.settings import Settings

DESCRIPTION = f"""\
Configure sources, operators and weights; read interactions, leads and statistics; assign and
close interactions by hand; publish `interaction.create` over HTTP. Every change that can free
capacity hands waiting interactions to operators at once, oldest first, with the worker's code.
When `API_TOKEN` is set, every `/api/v1` route and `/metrics` need `Authorization: Bearer <token>`.
Requests must name one of `API_ALLOWED_HOSTS` in `Host` (400 otherwise; `/health` answers any).
Changes (POST, PUT, PATCH, DELETE) take bodies as `application/json` only (415 otherwise) and are
refused with 403 when a browser sends them from another site (`Origin`, `Sec-Fetch-Site`).
Request bodies are limited to {MAX_BODY_BYTES // 1024} KiB (413).
"""
# Swagger UI (`/docs`) and ReDoc (`/redoc`) load their script and style from here, not from a CDN,
# so the documentation works on a machine without internet access.
DOCS_STATIC_PATH = "/docs/static"


def create_app(settings: Settings) -> FastAPI:
    app = FastAPIOffline(
        title="leadrouter",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        static_url=DOCS_STATIC_PATH,
    )
    app.state.settings = settings
    app.state.metrics = ApiMetrics()
    app.state.dashboard = DashboardHub()
    token = settings.api_token.get_secret_value() if settings.api_token else None
    security = documented_security(token is not None)
    for module in (operators, sources, interactions, leads, stats, dashboard):
        app.include_router(module.routes, dependencies=security)
    app.include_router(root.routes)
    app.include_router(health.routes)
    app.include_router(asyncapi.routes)
    app.include_router(metrics.routes)
    app.include_router(dashboard.page_routes)
    app.mount(dashboard.STATIC_PATH, dashboard.static_files(), name="dashboard-static")
    install_error_handlers(app)
    # Added innermost first: metrics see every answer, then the host, the token, the site, the
    # body size.
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(SiteGuardMiddleware)
    if token is not None:
        app.add_middleware(BearerTokenMiddleware, token=token)
    allowed_hosts = settings.allowed_hosts
    if allowed_hosts is not None:
        app.add_middleware(HostGuardMiddleware, allowed=allowed_hosts)
    app.add_middleware(RequestMetricsMiddleware, metrics=app.state.metrics)
    return app
