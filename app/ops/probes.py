"""Liveness and readiness, answered ahead of every other middleware.

Kubelets and load balancers poll these every few seconds on every pod. They need no
request ID, CORS, body limit, access line or request metrics, so this outermost layer
answers ``GET`` (and ``HEAD``, which some load balancers send) for ``/health`` and
``/ready`` itself and the rest of the stack never sees them; every other request
passes straight through.

Liveness never looks at dependencies: a database outage must not make Kubernetes
restart every pod. Readiness does, so traffic goes only where it can be served.
Neither needs authentication, and neither ever runs migrations.
"""

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from app.ops.readiness import READINESS_PROBE

HEALTH_PATH = "/health"
READY_PATH = "/ready"
PROBE_PATHS = (HEALTH_PATH, READY_PATH)

_JSON = (b"content-type", b"application/json")
_NO_STORE = (b"cache-control", b"no-store")
_HEALTHY = b'{"status":"ok"}'
_METHODS = frozenset({"GET", "HEAD"})


class ProbeMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
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
