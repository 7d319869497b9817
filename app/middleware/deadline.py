"""Request deadline: a request still running after ``REQUEST_TIMEOUT_SECONDS`` is ended.

Without it a request waits as long as whatever it waits on: a database slowed by the
network holds the client, a worker slot and a pooled connection until the driver's
own timeout, longer than any load balancer waits. At the deadline the client gets a
problem document at once: 503 with ``Retry-After`` when the request was waiting on
the database (every request is in the same position), 408 when the client had not
finished sending its body, 504 otherwise. The request's task is then cancelled, which
cancels the database call it was waiting on; SQLAlchemy discards that connection,
never returning it half-read, and on a slow network closing it politely can take two
seconds more, which is why the answer does not wait for the cancellation to finish.

Once a response has started, its body is not cut for being long, only for stalling:
every chunk sent moves the deadline to a full timeout from then.

One watcher per worker enforces every request's deadline, a tenth of the timeout (at
most a second) late at most, rather than a timer per request: measured in process, a
timer (``asyncio.timeout``) cost 9 us a request, this middleware about 3 us.
"""

import asyncio
import contextlib
import contextvars
from collections.abc import Iterator
from http import HTTPStatus

import asyncpg
import sqlalchemy
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.context import request_id_var
from app.core.errors import problem_response
from app.core.resources import Resource
from app.db.errors import RETRY_AFTER_SECONDS

logger = structlog.get_logger(__name__)

# Code a request waits in when it waits on the database: a query, a connect, the pool.
_DATABASE_CODE = tuple(package.__path__[0] for package in (sqlalchemy, asyncpg))


class _Request:
    __slots__ = (
        "answer",
        "deadline",
        "request_id",
        "scope",
        "send",
        "started",
        "state",
        "task",
        "waiting_on_client",
    )

    def __init__(self, scope: Scope, send: Send, task: asyncio.Task[object], now: float) -> None:
        self.scope = scope
        self.request_id = request_id_var.get()
        self.send = send
        self.task = task
        self.started = now
        self.deadline = now
        self.waiting_on_client = False
        self.answer: asyncio.Task[None] | None = None  # the problem document being sent
        # "running", "responding" once its response has started, "expired" once answered.
        self.state = "running"


class RequestDeadlines:
    """The running requests and the watcher that ends the overdue ones."""

    def __init__(self, timeout_seconds: float) -> None:
        self.timeout_seconds = timeout_seconds
        self.running: dict[asyncio.Task[object], _Request] = {}
        self._watcher: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        interval = min(1.0, self.timeout_seconds / 10)
        while True:
            await asyncio.sleep(interval)
            now = loop.time()
            for request in [r for r in self.running.values() if r.deadline <= now]:
                try:
                    self._expire(request, now)
                except Exception:  # one request's trouble must not end the watching
                    logger.exception("request deadline not enforced", path=request.scope["path"])

    def _expire(self, request: _Request, now: float) -> None:
        del self.running[request.task]
        cause = _cause(request)
        responding = request.state == "responding"
        request.state = "expired"  # from now on the request's own sends go nowhere
        request.task.cancel()
        # Logged and answered under the request's ID, from a task of their own.
        context = contextvars.copy_context()
        context.run(request_id_var.set, request.request_id)
        context.run(
            logger.warning,
            "request deadline exceeded",
            method=request.scope["method"],
            path=request.scope["path"],
            waiting_on=cause,
            response_started=responding,
            elapsed_s=round(now - request.started, 3),
        )
        if responding:
            # Too late for a problem document: an unfinished body makes the server
            # close the connection, which tells the client the response is cut.
            return
        request.answer = asyncio.get_running_loop().create_task(
            _answer(request, cause), context=context
        )


async def _answer(request: _Request, cause: str) -> None:
    status, detail, headers = _ANSWERS[cause]
    response = problem_response(status, detail, instance=request.scope["path"], headers=headers)
    try:
        await response(request.scope, _no_body, request.send)
    except Exception as exc:  # the client is gone, or the server closed the response
        logger.info("request deadline answer not delivered", error=type(exc).__name__)


REQUEST_DEADLINES = Resource[RequestDeadlines]("request_deadlines")


class RequestDeadlineMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        deadlines = REQUEST_DEADLINES.of(scope)
        timeout = deadlines.timeout_seconds
        task: asyncio.Task[object] = asyncio.current_task()  # type: ignore[assignment]
        loop = task.get_loop()
        request = _Request(scope, send, task, loop.time())
        request.deadline += timeout

        async def receive_watched() -> Message:
            # Read by the watcher before it cancels; cleared however the wait ends (the
            # app may cancel it too, watching for a disconnect).
            request.waiting_on_client = True
            try:
                return await receive()
            finally:
                request.waiting_on_client = False

        async def send_unless_expired(message: Message) -> None:
            if request.state == "expired":
                return
            request.state = "responding"
            await send(message)
            if message.get("more_body"):
                request.deadline = loop.time() + timeout
            elif message["type"] == "http.response.body":
                # Answered: what runs after the response (background tasks) has no deadline.
                deadlines.running.pop(task, None)

        deadlines.running[task] = request
        try:
            await self.app(scope, receive_watched, send_unless_expired)
        except asyncio.CancelledError:
            # Ours only if the watcher ended this request and nobody else cancelled it too.
            if request.state != "expired" or task.uncancel() > 0:
                raise
        finally:
            deadlines.running.pop(task, None)
            if request.answer is not None:
                # The server must see the response complete before this call returns,
                # however the app ended (it may have swallowed the cancellation).
                await asyncio.shield(request.answer)


def _cause(request: _Request) -> str:
    if request.waiting_on_client:
        return "client"
    if any(path.startswith(_DATABASE_CODE) for path in _awaiting(request.task)):
        return "database"
    return "application"


def _awaiting(task: asyncio.Task[object]) -> Iterator[str]:
    """The files of the coroutines the task is suspended in, outermost first."""
    awaitable: object = task.get_coro()
    while awaitable is not None:
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
        if frame is not None:
            yield frame.f_code.co_filename
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


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
