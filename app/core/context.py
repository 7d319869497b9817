"""Per-request context shared by middleware, logging and error reporting.

The request ID lives in exactly one ContextVar; log processors and the Sentry hook
read it from here, so nothing has to bind it again on every request.
"""

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
REQUEST_ID_HEADER = "X-Request-ID"
