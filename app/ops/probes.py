"""Liveness, readiness and the metrics listener, answered ahead of every other middleware.

Kubelets and load balancers poll the probes every few seconds on every pod. They need
no request ID, CORS, body limit, access line or request metrics, so this outermost
layer answers ``GET`` (and ``HEAD``, which some load balancers send) for ``/health``
and ``/ready`` itself and the rest of the stack never sees them; every other request
passes straight through.

Prometheus scrapes the same way, but on a port of its own: whatever arrives on
``METRICS_PORT`` (``scope["server"]`` names the local address it was accepted on) goes
to ``serve_metrics_listener`` and never reaches the API, and the API has no ``/metrics``.
Telling the two apart costs an API request one lookup and one comparison.

Liveness never looks at dependencies: a database outage must not make Kubernetes
restart every pod. Readiness does, so traffic goes only where it can be served.
Neither needs authentication, and neither ever runs migrations.
"""

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from app.ops.metrics import serve_metrics_listener
from app.ops.readiness import READINESS_PROBE

HEALTH_PATH = "/health"
READY_PATH = "/ready"
PROBE_PATHS = (HEALTH_PATH, READY_PATH)

_JSON = (b"content-type", b"application/json")
_NO_STORE = (b"cache-control", b"no-store")
_HEALTHY = b'{"status":"ok"}'
_METHODS = frozenset({"GET", "HEAD"})
# Lifespan scopes have no server; a unix socket's has no port.
_NO_SERVER = ("", None)
# No listener has this port: with metrics off, nothing is taken for the metrics listener.
_NO_PORT = -1


class ProbeMiddleware:
    def __init__(self, app: ASGIApp, *, metrics_port: int | None = None) -> None:
        """``metrics_port``: the metrics listener's (``METRICS_PORT``); None with metrics off."""
        self.app = app
        self.metrics_port = _NO_PORT if metrics_port is None else metrics_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope.get("server") or _NO_SERVER)[1] == self.metrics_port:
            await serve_metrics_listener(scope, receive, send)
            return
        if (
            scope["type"] != "http"
            or scope["path"] not in PROBE_PATHS
            or scope["method"] not in _METHODS
        ):
            await self.app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        if scope["path"] == HEALTH_PATH:
            await _respond(send, 200, _HEALTHY, head=head)
            return
        report = await READINESS_PROBE.of(scope).check()
        body = {"status": "ready" if report.ready else "unavailable", "checks": report.checks}
        await _respond(
            send,
            200 if report.ready else 503,
            json.dumps(body, separators=(",", ":")).encode(),
            _NO_STORE,
            head=head,
        )


async def _respond(
    send: Send, status: int, body: bytes, *headers: tuple[bytes, bytes], head: bool
) -> None:
    length = (b"content-length", str(len(body)).encode())
    await send(
        {"type": "http.response.start", "status": status, "headers": [_JSON, length, *headers]}
    )
    await send({"type": "http.response.body", "body": b"" if head else body})
