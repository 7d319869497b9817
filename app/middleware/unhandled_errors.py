"""Last line of defence: an exception no handler caught becomes a 500 problem document.

Caught here rather than left to Starlette's server-error handler, which would send
the 500 and then re-raise, so the server logged the same traceback a second time.
Here it is logged once, with the request ID, and reported to Sentry (a no-op when
Sentry is off); the client gets a generic detail and never the exception's text.
"""

from http import HTTPStatus

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import problem_response
from app.ops.sentry import report_exception

logger = structlog.get_logger(__name__)

GENERIC_DETAIL = "An unexpected error occurred. Quote the request ID when reporting it."


class UnhandledErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        response_started = False

        async def send_tracking_start(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking_start)
        except Exception as exc:
            logger.exception("unhandled exception", method=scope["method"], path=scope["path"])
            report_exception(exc)
            if response_started:
                # Too late for a clean response; returning with the body unfinished makes
                # the server close the connection (re-raising would log it a second time).
                return
            response = problem_response(
                HTTPStatus.INTERNAL_SERVER_ERROR, GENERIC_DETAIL, instance=scope["path"]
            )
            await response(scope, receive, send)
