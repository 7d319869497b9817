"""Per-request context shared by middleware, logging and error reporting.

The request ID lives in exactly one ContextVar; log processors and the Sentry hook
read it from here, so nothing has to bind it again on every request. Which ID a
request gets is decided here too, for the telemetry middleware and for the requests
the worker refuses before the app (``app.ops.request_heads``).
"""

import os
import re
from collections.abc import Iterable
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_KEY = REQUEST_ID_HEADER.lower().encode("latin-1")  # as ASGI spells header names
_VALID_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,128}")


def incoming_request_id(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The caller's ID when it is 1-128 characters of ``[A-Za-z0-9._-]``, else a new one.

    A new ID is 32 random hex digits, as unique as a UUID4 at a fraction of its cost.
    """
    for name, value in headers:
        if name == REQUEST_ID_KEY:
            if _VALID_REQUEST_ID.fullmatch(value):
                request_id: str = value.decode("ascii")
                return request_id
            break
    return os.urandom(16).hex()
