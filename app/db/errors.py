"""A request that cannot reach the database gets 503 with Retry-After, never a 500.

A refused or timed-out connection, an exhausted pool and a connection lost mid-request
are an outage: the client should retry later, and every other request is in the same
position. Any other database error is a bug, left to the unhandled-error guard (500).
"""

from http import HTTPStatus

import structlog
from fastapi import FastAPI, Request
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.core.errors import ProblemResponse, problem_response

# How long a client should wait before retrying when the database is unreachable.
RETRY_AFTER_SECONDS = "5"
# PostgreSQL refusing or dropping work it could do later: no connection slot left
# (53300), a statement past DB_STATEMENT_TIMEOUT_MS (57014: the database is too slow),
# shutting down or starting up (57P01-57P03). Class 08 is every connection failure.
_UNAVAILABLE_SQLSTATES = frozenset({"53300", "57014", "57P01", "57P02", "57P03"})

logger = structlog.get_logger(__name__)


async def _database_unavailable(request: Request, exc: Exception) -> ProblemResponse:
    logger.warning("database unavailable", error=type(exc).__name__, path=request.url.path)
    return problem_response(
        HTTPStatus.SERVICE_UNAVAILABLE,
        "The database is unavailable. Retry later.",
        instance=request.url.path,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


async def _database_error(request: Request, exc: Exception) -> ProblemResponse:
    """Lost connections are an outage (503); any other database error is a bug (500)."""
    assert isinstance(exc, DBAPIError)  # noqa: S101  (registered for this type only)
    sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
    if (
        exc.connection_invalidated
        or isinstance(exc, OperationalError | InterfaceError)
        or sqlstate in _UNAVAILABLE_SQLSTATES
        or sqlstate.startswith("08")
    ):
        return await _database_unavailable(request, exc)
    raise exc


def register_database_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DBAPIError, _database_error)
    # Pool exhausted, connect timed out or refused: the database cannot be reached.
    for unreachable in (PoolTimeoutError, TimeoutError, ConnectionError):
        app.add_exception_handler(unreachable, _database_unavailable)
