"""Request ID middleware: one ID per request, trusted from upstream when well formed.

IDs from load balancers, nginx and other services are kept (so one ID follows a
request across hops); anything that could corrupt logs or headers is replaced.
"""

import re
from uuid import uuid4

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.context import REQUEST_ID_HEADER, request_id_var

_HEADER_KEY = REQUEST_ID_HEADER.lower().encode("latin-1")
_VALID_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,128}")


def incoming_request_id(scope: Scope) -> str:
    """The caller's ID when it is 1-128 characters of ``[A-Za-z0-9._-]``, else a fresh UUID4 hex."""
    for name, value in scope["headers"]:
        if name == _HEADER_KEY:
            if _VALID_REQUEST_ID.fullmatch(value):
                request_id: str = value.decode("ascii")
                return request_id
            break
    return uuid4().hex


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = incoming_request_id(scope)
        header = (_HEADER_KEY, request_id.encode("ascii"))
        token = request_id_var.set(request_id)

        async def send_with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            request_id_var.reset(token)
