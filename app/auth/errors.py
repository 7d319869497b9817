"""Authentication's errors: unusable credentials (401) and too many attempts (429).

An ``AuthenticationError``'s message is the reason (``expired``, ``bad signature``...)
and goes to the log line ``authentication failed``; the client only learns that it
must authenticate.
"""

from collections.abc import Mapping
from http import HTTPStatus
from typing import ClassVar

from app.core.errors import ProblemError


class AuthenticationError(ProblemError):
    status = HTTPStatus.UNAUTHORIZED
    detail = "Missing, invalid or expired credentials."
    headers: ClassVar[Mapping[str, str]] = {"WWW-Authenticate": "Bearer"}
    log_event = "authentication failed"


class TooManyAttemptsError(ProblemError):
    """Over a log-in or registration limit: retry after the window lets one more in."""

    status = HTTPStatus.TOO_MANY_REQUESTS
    detail = "Too many attempts. Retry later."

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(retry_after_seconds)
        self.retry_after_seconds = retry_after_seconds

    def response_headers(self) -> Mapping[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}
