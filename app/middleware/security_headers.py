"""Response headers that keep browsers from misusing what the API returns.

Every response of the app (the probes are answered before it) says
``X-Content-Type-Options: nosniff`` (a JSON body is never run as a
script or rendered as HTML) and ``Referrer-Policy: no-referrer``. Responses under the
API prefix also forbid everything a page could do (``Content-Security-Policy:
default-src 'none'; frame-ancestors 'none'``) and any caching (``Cache-Control:
no-store``): they carry tokens and one user's data, which no shared cache may keep.
The interactive docs are outside the prefix and keep what they need to render. The
headers are built once; a response only gets a list appended.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.routing import API_PREFIX

_EVERY_RESPONSE = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
_API_RESPONSE = [
    *_EVERY_RESPONSE,
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cache-control", b"no-store"),
]


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._api_prefix = f"{API_PREFIX}/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = _API_RESPONSE if scope["path"].startswith(self._api_prefix) else _EVERY_RESPONSE

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *added]
            await send(message)

        await self.app(scope, receive, send_with_headers)
