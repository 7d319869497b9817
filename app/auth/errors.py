"""Authentication's errors: bad credentials (401), too many attempts (429), busy (503).

An ``AuthenticationError``'s message is the reason (``expired``, ``bad signature``...)
and goes to the log line ``authentication failed``; the client only learns that it
must authenticate.
"""

from collections.abc import Mapping
from http import HTTPStatus
from typing import ClassVar

from app.core.errors import ProblemError, RetryLaterError


class AuthenticationError(ProblemError):
    status = HTTPStatus.UNAUTHORIZED
    detail = "Missing, invalid or expired credentials."
    headers: ClassVar[Mapping[str, str]] = {"WWW-Authenticate": "Bearer"}
    log_event = "authentication failed"


class TooManyAttemptsError(RetryLaterError):
    """Over a log-in or registration limit: retry after the window lets one more in."""

    status = HTTPStatus.TOO_MANY_REQUESTS
    detail = "Too many attempts. Retry later."


class HashingBusyError(RetryLaterError):
    """Every password-hashing slot stayed busy for ``PASSWORD_HASH_WAIT_SECONDS``."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    detail = "Too many log-ins in progress. Retry later."
    log_event = "password hashing busy"
