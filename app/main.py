"""Application factory: the one place that assembles the service.

gunicorn builds the app by calling ``create_app()`` (``gunicorn.conf.py``), uvicorn
with ``--factory``, tests with their own settings (and a frozen ``clock`` where time
matters). Importing this module does nothing; building the app reads settings and
wires routes and middleware, nothing more: connections and logging start in the
lifespan.
"""

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from app.core.clock import Clock, utc_now
from app.core.config import Settings, get_settings_or_exit
from app.core.context import REQUEST_ID_HEADER
from app.core.errors import register_error_handlers
from app.core.routing import add_routes
from app.db.errors import register_database_error_handlers
from app.items.router import router as items_router  # example:items
from app.lifespan import build_lifespan
from app.middleware.body_limit import BodySizeLimitMiddleware
from app.middleware.deadline import RequestDeadlineMiddleware
from app.middleware.security_headers import SecurityHeadersMiddleware
from app.middleware.telemetry import RequestTelemetryMiddleware
from app.middleware.unhandled_errors import UnhandledErrorMiddleware
from app.ops.metrics import METRICS_PATH
from app.ops.probes import PROBE_PATHS, ProbeMiddleware
from app.ops.tracing import untraced_paths
from app.users.router import log_in_router
from app.users.router import router as users_router


def create_app(settings: Settings | None = None, *, clock: Clock = utc_now) -> FastAPI:
    settings = settings or get_settings_or_exit()
    docs = settings.docs_served
    app = FastAPI(
        title=settings.app_name,
        version=settings.app_version,
        # Off: the paths are not routed, so they are the ordinary 404 problem.
        openapi_url="/openapi.json" if docs else None,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        lifespan=build_lifespan(settings, clock),
        # Request spans, once the lifespan's start_tracing has installed a tracer
        # provider; never for probes and scrapes. Metrics are Prometheus's and logs
        # structlog's, so FastAPI's own stay off, and so does its auto-configuration
        # (FASTAPI_OTEL_AUTO_CONFIGURE), which would install a provider before ours.
        telemetry={
            "exclude": untraced_paths((*PROBE_PATHS, METRICS_PATH)),
            # Off unless configured, so requests skip the per-request check for a tracer.
            "tracing": settings.otel_exporter_otlp_endpoint is not None,
            "metrics": False,
            "logs": False,
            "auto_configure": False,
            # Request and SQL spans only: per-step spans mark every 401 as an error.
            "operation_spans": False,
        },
    )
    register_error_handlers(app)
    register_database_error_handlers(app)
    add_routes(
        app,
        (
            users_router,
            log_in_router,
            items_router,  # example:items
        ),
    )

    # Added innermost first: a request passes the probes (which answer /health and
    # /ready at once, and whatever arrives on the metrics listener), telemetry (request
    # ID, access line, metrics), security headers, CORS, the request deadline and the
    # unhandled-error guard (inside CORS, so browsers can read their 504 and 500), body
    # limit.
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=settings.max_request_body_bytes)
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(RequestDeadlineMiddleware)
    if settings.cors_allow_origins:  # with no origin allowed, it would only refuse
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allow_origins,
            allow_credentials=settings.cors_allow_credentials,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", REQUEST_ID_HEADER],
            expose_headers=[REQUEST_ID_HEADER, "Idempotent-Replayed", "Retry-After"],
        )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(
        RequestTelemetryMiddleware, routes=app.routes, slow_request_ms=settings.slow_request_ms
    )
    app.add_middleware(
        ProbeMiddleware, metrics_port=settings.metrics_port if settings.metrics_enabled else None
    )
    return app
