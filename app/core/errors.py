"""One error format for every failure: RFC 9457 problem details.

Clients parse one shape (``type``, ``title``, ``status``, ``detail``, ``instance``
plus ``request_id``) whether the error came from validation, routing, a middleware
or a bug (see ``app.middleware.unhandled_errors``). Details are written for the
client; internals stay in the logs.
"""

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from app.core.context import request_id_var

PROBLEM_MEDIA_TYPE = "application/problem+json"


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


def register_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation_error)
