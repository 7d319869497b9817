"""Access log: one structured line per request, written when the response finishes.

Probe paths log at DEBUG so a kubelet polling every few seconds does not drown the
lines people read. The client address is the one uvicorn resolved through
``FORWARDED_ALLOW_IPS``, so it is the real caller only behind trusted proxies.
"""

import time
from collections.abc import Collection

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = structlog.get_logger("app.access")


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, quiet_paths: Collection[str]) -> None:
        self.app = app
        self.quiet_paths = frozenset(quiet_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        status = 500  # what the client sees if the app raises before responding

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            client = scope.get("client")
            log = logger.debug if scope["path"] in self.quiet_paths else logger.info
            log(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                client=client[0] if client else None,
            )
