"""Request telemetry: the request ID, the access log line, the metrics, slow-request warnings.

One middleware for all four, so a request is identified once, timed once, and its
response start is seen once (to stamp ``X-Request-ID`` on it and to record its status).

The request ID is the caller's when it is well formed, so IDs from load balancers,
nginx and other services follow a request across hops; anything that could corrupt
logs or headers is replaced by a new one. It lives in ``request_id_var`` for the log
processors, error bodies and the Sentry hook.

Probes and scrapes never get here (``app.ops.probes`` answers them first), so a
kubelet or scraper polling every few seconds does not drown the lines people read. The
client address is the one uvicorn resolved through ``FORWARDED_ALLOW_IPS``, so it is
the real caller only behind trusted proxies.
"""

import asyncio
import time
from collections.abc import Sequence

import structlog
from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.context import REQUEST_ID_KEY, incoming_request_id, request_id_var
from app.core.logging import ACCESS_LOG
from app.ops.metrics import METRICS, UNMATCHED_ROUTE

logger = structlog.get_logger("app.access")


class RouteTemplates:
    """The full template (router prefixes included) of the route a request matched.

    Templates keep metric labels bounded: ``/api/v1/orders/{order_id}``, never the raw
    path. The table is built on first use, once every route has been added.
    """

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self._routes = routes
        self._templates: dict[int, str] | None = None  # by id(): routes are unhashable

    def __call__(self, scope: Scope) -> str:
        # FastAPI's routes put themselves in the scope; Starlette's plain routes (the docs
        # pages and the schema) only their endpoint.
        route = scope.get("route") or scope.get("endpoint")
        if route is None:
            return UNMATCHED_ROUTE
        if self._templates is None:
            self._templates = self._build()
        template = self._templates.get(id(route)) or getattr(route, "path", None)
        return template if isinstance(template, str) else UNMATCHED_ROUTE

    def _build(self) -> dict[int, str]:
        templates: dict[int, str] = {}
        for context in iter_route_contexts(self._routes):
            if context.path_format:
                route = context.original_route
                templates[id(route)] = context.path_format
                endpoint = getattr(route, "endpoint", None)
                if endpoint is not None:
                    templates.setdefault(id(endpoint), context.path_format)
        return templates


class RequestTelemetryMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Sequence[BaseRoute],
        slow_request_ms: int,
    ) -> None:
        self.app = app
        self.route_template = RouteTemplates(routes)
        self.slow_request_seconds = slow_request_ms / 1000

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        request_id = incoming_request_id(scope["headers"])
        request_id_header = (REQUEST_ID_KEY, request_id.encode("ascii"))
        token = request_id_var.set(request_id)
        # What the client sees if the app raises before responding; None if the request
        # was cancelled (shutdown, client gone) before any response: not a 5xx.
        status: int | None = 500

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), request_id_header]
            await send(message)

        metrics = METRICS.of(scope)
        if metrics is not None:
            metrics.in_progress.inc()
        try:
            await self.app(scope, receive, send_with_request_id)
        except asyncio.CancelledError:
            if status == 500:
                status = None
            raise
        finally:
            elapsed = time.perf_counter() - started
            method, route = scope["method"], self.route_template(scope)
            if metrics is not None:
                metrics.in_progress.dec()
                if status is not None:
                    metrics.observe_request(method, route, status, elapsed)
            duration_ms = round(elapsed * 1000, 2)
            if elapsed >= self.slow_request_seconds:
                logger.warning("slow request", method=method, route=route, duration_ms=duration_ms)
            client = scope.get("client")
            ACCESS_LOG.of(scope).write(
                "info",
                request_id=request_id,
                method=method,
                path=scope["path"],
                route=route,
                status=status,
                duration_ms=duration_ms,
                client=client[0] if client else None,
            )
            request_id_var.reset(token)
