"""One error format for every failure: RFC 9457 problem details.

Clients parse one shape (``type``, ``title``, ``status``, ``detail``, ``instance``
plus ``request_id``) whether the error came from validation, routing, a middleware
or a bug (see ``app.middleware.unhandled_errors``). Details are written for the
client; internals stay in the logs.
"""

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from app.core.context import request_id_var

PROBLEM_MEDIA_TYPE = "application/problem+json"
# How long a client should wait before retrying when the database is unreachable.
RETRY_AFTER_SECONDS = "5"

logger = structlog.get_logger(__name__)


class NotFoundError(Exception):
    """The resource does not exist, or is not the caller's (the two are not told apart)."""


class ConflictError(Exception):
    """The request collides with existing state (a taken email)."""


class InvalidInputError(Exception):
    """Input that passed schema validation but cannot be used (a tampered cursor)."""


class AuthenticationError(Exception):
    """Missing or unusable credentials. The message is the reason, for logs only."""


class Problem(BaseModel):
    """The body of every error response (RFC 9457), for the OpenAPI schema."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    request_id: str | None
    errors: list[dict[str, Any]] | None = None


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "model": Problem,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        "description": description,
    }
    for status, description in [
        (400, "Unusable input"),
        (401, "Missing, invalid or expired credentials"),
        (404, "Not found"),
        (409, "Conflict"),
        (413, "Request body too large"),
        (422, "Validation error"),
        (500, "Unexpected error"),
        (503, "Database unavailable; retry after Retry-After seconds"),
    ]
}


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


def problem_response(
    status: int,
    detail: str,
    *,
    instance: str,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> ProblemResponse:
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": int(status),
        "detail": detail,
        "instance": instance,
        "request_id": request_id_var.get(),
        **extra,
    }
    return ProblemResponse(body, status_code=status, headers=headers)


async def _http_exception(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, HTTPException)  # noqa: S101  (registered for this type only)
    return problem_response(
        exc.status_code, str(exc.detail), instance=request.url.path, headers=exc.headers
    )


async def _validation_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101  (registered for this type only)
    # The offending input is never echoed back: it may be a password.
    errors = [
        {"location": list(error["loc"]), "message": error["msg"], "type": error["type"]}
        for error in exc.errors()
    ]
    return problem_response(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "The request is invalid; see errors for each field.",
        instance=request.url.path,
        errors=errors,
    )


_DOMAIN_STATUS: dict[type[Exception], tuple[HTTPStatus, str]] = {
    NotFoundError: (HTTPStatus.NOT_FOUND, "The resource does not exist."),
    ConflictError: (HTTPStatus.CONFLICT, ""),
    InvalidInputError: (HTTPStatus.BAD_REQUEST, ""),
}


async def _domain_error(request: Request, exc: Exception) -> ProblemResponse:
    status, fixed_detail = _DOMAIN_STATUS[type(exc)]
    return problem_response(status, fixed_detail or str(exc), instance=request.url.path)


async def _authentication_error(request: Request, exc: Exception) -> ProblemResponse:
    # The reason goes to the log (with the request ID), never the credential itself;
    # the client learns only that it must authenticate.
    logger.info("authentication failed", reason=str(exc), path=request.url.path)
    return problem_response(
        HTTPStatus.UNAUTHORIZED,
        "Missing, invalid or expired credentials.",
        instance=request.url.path,
        headers={"WWW-Authenticate": "Bearer"},
    )


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
    if exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError):
        return await _database_unavailable(request, exc)
    raise exc


def register_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for domain_error in _DOMAIN_STATUS:
        app.add_exception_handler(domain_error, _domain_error)
    app.add_exception_handler(AuthenticationError, _authentication_error)
    app.add_exception_handler(DBAPIError, _database_error)
    # Pool exhausted, connect timed out or refused: the database cannot be reached.
    for unreachable in (PoolTimeoutError, TimeoutError, ConnectionError):
        app.add_exception_handler(unreachable, _database_unavailable)
