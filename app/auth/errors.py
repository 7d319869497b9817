"""``AuthenticationError``: missing or unusable credentials, answered with a 401.

Its message is the reason (``expired``, ``bad signature``...) and goes to the log
line ``authentication failed``; the client only learns that it must authenticate.
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
