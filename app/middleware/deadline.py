"""Request deadline: a request still running after ``REQUEST_TIMEOUT_SECONDS`` is ended.

Without it a request waits as long as whatever it waits on: a database slowed by the
network holds the client, a worker slot and a pooled connection until the driver's
own timeout, longer than any load balancer waits. At the deadline the request's task
is cancelled, which cancels the database call it was waiting on (the connection is
discarded, never returned half-read, see ``app.db.database``), and the client gets a
problem document: 503 with ``Retry-After`` when the database was the wait (every
request is in the same position), 408 when the client had not finished sending its
body, 504 otherwise.

Once a response has started, its body is not cut for being long, only for stalling:
every chunk sent moves the deadline to a full timeout from then.
"""

import asyncio
from http import HTTPStatus

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import problem_response
from app.db.database import interrupted_in_database
from app.db.errors import RETRY_AFTER_SECONDS

logger = structlog.get_logger(__name__)


class RequestDeadlineMiddleware:
    def __init__(self, app: ASGIApp, *, timeout_seconds: float) -> None:
        self.app = app
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        loop = asyncio.get_running_loop()
        response_started = False
        waiting_on_client = False

        async def receive_watched() -> Message:
            nonlocal waiting_on_client
            waiting_on_client = True  # stays set if the deadline cancels the wait
            message = await receive()
            waiting_on_client = False
            return message

        async def send_extending(message: Message) -> None:
            nonlocal response_started
            response_started = True
            await send(message)
            if message.get("more_body"):
                deadline.reschedule(loop.time() + self.timeout_seconds)

        started = loop.time()
        try:
            async with asyncio.timeout(self.timeout_seconds) as deadline:
                await self.app(scope, receive_watched, send_extending)
        except TimeoutError:
            if not deadline.expired():
                raise  # a timeout of the request's own, not the deadline
            cause = self._cause(waiting_on_client=waiting_on_client)
            logger.warning(
                "request deadline exceeded",
                method=scope["method"],
                path=scope["path"],
                waiting_on=cause,
                response_started=response_started,
                elapsed_s=round(loop.time() - started, 3),
            )
            if response_started:
                # Too late for a problem document: an unfinished body makes the server
                # close the connection, which tells the client the response is cut.
                return
            await self._respond(cause, scope, receive, send)

    @staticmethod
    def _cause(*, waiting_on_client: bool) -> str:
        if interrupted_in_database.get():
            return "database"
        return "client" if waiting_on_client else "application"

    @staticmethod
    async def _respond(cause: str, scope: Scope, receive: Receive, send: Send) -> None:
        status, detail, headers = _ANSWERS[cause]
        response = problem_response(status, detail, instance=scope["path"], headers=headers)
        await response(scope, receive, send)


_ANSWERS: dict[str, tuple[HTTPStatus, str, dict[str, str]]] = {
    "database": (
        HTTPStatus.SERVICE_UNAVAILABLE,
        "The database is too slow. Retry later.",
        {"Retry-After": RETRY_AFTER_SECONDS},
    ),
    "client": (
        HTTPStatus.REQUEST_TIMEOUT,
        "The request body arrived too slowly.",
        {"Connection": "close"},
    ),
    "application": (HTTPStatus.GATEWAY_TIMEOUT, "The request took too long.", {}),
}
