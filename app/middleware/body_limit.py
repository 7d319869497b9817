"""Request body limit: refuse oversized bodies before they are read whole.

A declared ``Content-Length`` over the limit is refused at once; a chunked body is
counted as it streams and refused when it crosses the limit, so memory per request
stays bounded either way. An HTTP/1 request with neither header has no body (HTTP/1
frames bodies only by those two), so it passes untouched; HTTP/2 frames bodies itself,
so there every body is counted.
"""

from http import HTTPStatus

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import problem_response

_HTTP1 = frozenset({"1.0", "1.1"})


def _body_framing(scope: Scope) -> tuple[bool, int | None]:
    """Whether the request may have a body, and its length if declared and trusted.

    A length comes with ``Content-Length`` alone; with ``Transfer-Encoding`` too (or a
    length that is not a number) the body must be counted.
    """
    length: bytes | None = None
    chunked = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            length = value
        elif name == b"transfer-encoding":
            chunked = True
    if length is None and not chunked:
        return scope["http_version"] not in _HTTP1, None
    declared = int(length) if length is not None and length.isdigit() and not chunked else None
    return True, declared


# The rest of an oversized body is never read, so the connection cannot be reused.
_CLOSE = {"Connection": "close"}


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.detail = f"The request body exceeds the limit of {max_body_bytes} bytes."

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        has_body, declared = _body_framing(scope)
        if not has_body:
            await self.app(scope, receive, send)
            return
        if declared is not None:
            # The HTTP server frames the body by Content-Length, so a declared length
            # within the limit is a guarantee and the body needs no counting.
            if declared <= self.max_body_bytes:
                await self.app(scope, receive, send)
                return
            response = problem_response(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                self.detail,
                instance=scope["path"],
                headers=_CLOSE,
            )
            await response(scope, receive, send)
            return

        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # Raised into whatever is reading the body; the error handlers turn
                    # it into the same problem document as the declared case.
                    raise HTTPException(
                        HTTPStatus.REQUEST_ENTITY_TOO_LARGE, self.detail, headers=_CLOSE
                    )
            return message

        await self.app(scope, receive_within_limit, send)
