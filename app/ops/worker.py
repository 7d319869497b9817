"""The gunicorn worker: uvicorn's, with limits on request heads and no ``server`` header.

The limits are the settings' ``HTTP_MAX_HEADER_BYTES``, ``HTTP_MAX_HEADERS`` and
``HTTP_HEADER_TIMEOUT_SECONDS``, enforced by the protocol in ``app.ops.request_heads``
(httptools, which the worker therefore always uses). ``Server: uvicorn`` told every
client what to attack and nothing else; the ``Date`` header stays: RFC 9110 requires
it of a server with a clock, and uvicorn formats it once a second for all responses.

``make dev`` (plain uvicorn) runs without this worker, so without the limits.
"""

from typing import Any

from uvicorn_worker import UvicornWorker

from app.core.config import get_settings
from app.ops.request_heads import head_limited_protocol


class HeadLimitedWorker(UvicornWorker):  # type: ignore[misc]  # uvicorn_worker is untyped
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Read by UvicornWorker.__init__ into the uvicorn Config; bound per worker, in
        # the master, before the fork.
        self.CONFIG_KWARGS = {
            **UvicornWorker.CONFIG_KWARGS,
            "http": head_limited_protocol(get_settings()),
            "server_header": False,
        }
        super().__init__(*args, **kwargs)
