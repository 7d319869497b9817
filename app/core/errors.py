"""One error format for every failure: RFC 9457 problem details.

Clients parse one shape (``type``, ``title``, ``status``, ``detail``, ``instance``
plus ``request_id``) whether the error came from validation, routing, a middleware
or a bug (see ``app.middleware.unhandled_errors``). Details are written for the
client; internals stay in the logs.
"""

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, ClassVar

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from app.core.context import request_id_var

PROBLEM_MEDIA_TYPE = "application/problem+json"

logger = structlog.get_logger(__name__)


class ProblemError(Exception):
    """An error the client must hear about, as a problem document; its class says how.

    ``status`` is the response's status and ``headers`` go with it. ``detail`` is what
    the client reads; where it is None the exception's message is the detail, so write
    that message for the client. A class with a ``log_event`` logs that event at INFO
    with the message as ``reason``, which the client then never sees.
    """

    status: ClassVar[HTTPStatus]
    detail: ClassVar[str | None] = None
    headers: ClassVar[Mapping[str, str] | None] = None
    log_event: ClassVar[str | None] = None

    def response_headers(self) -> Mapping[str, str] | None:
        """``headers``; a class whose headers depend on the instance overrides this."""
        return self.headers


class RetryLaterError(ProblemError):
    """Refused for now (a limit, a busy resource): ``Retry-After`` says when to try again."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(retry_after_seconds)
        self.retry_after_seconds = retry_after_seconds

    def response_headers(self) -> Mapping[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class NotFoundError(ProblemError):
    """The resource does not exist, or is not the caller's (the two are not told apart)."""

    status = HTTPStatus.NOT_FOUND
    detail = "The resource does not exist."


class ConflictError(ProblemError):
    """The request collides with existing state (a taken email)."""

    status = HTTPStatus.CONFLICT


class InvalidInputError(ProblemError):
    """Input that passed schema validation but cannot be used (a tampered cursor)."""

    status = HTTPStatus.BAD_REQUEST


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
        (408, "Request body still arriving at the request deadline"),
        (409, "Conflict"),
        (413, "Request body too large"),
        (422, "Validation error"),
        (429, "Too many attempts; retry after Retry-After seconds"),
        (500, "Unexpected error"),
        (503, "Database or password hashing unavailable; retry after Retry-After seconds"),
        (504, "Not finished by the request deadline"),
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


async def _problem_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, ProblemError)  # noqa: S101  (registered for this type only)
    if exc.log_event is not None:
        logger.info(exc.log_event, reason=str(exc), path=request.url.path)
    return problem_response(
        exc.status,
        exc.detail or str(exc),
        instance=request.url.path,
        headers=exc.response_headers(),
    )


def register_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ProblemError, _problem_error)
