"""The shared outbound client: request IDs travel with calls, and timeouts are explicit.

The other service is a real HTTP server of the test's own on loopback.
"""

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.clients import app_client
from tests.support.settings import make_settings

pytestmark = pytest.mark.anyio


class EchoRequestId(BaseHTTPRequestHandler):
    """Answers with the X-Request-ID it received; /hang never answers in time."""

    def do_GET(self) -> None:
        if self.path == "/hang":
            time.sleep(3)
        self.send_response(200)
        self.send_header("X-Seen-Request-ID", self.headers.get("X-Request-ID", "none"))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        """Keep the test output clean."""


@pytest.fixture(scope="module")
def other_service() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoRequestId)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_outbound_calls_carry_the_current_request_id(
    database_url: str, other_service: str
) -> None:
    async with app_client(make_settings(database_url)) as client:
        response = await client.get(
            "/test/outbound",
            params={"url": f"{other_service}/echo"},
            headers={"X-Request-ID": "trace-across-services"},
        )
    assert response.json() == {"received_request_id": "trace-across-services"}


async def test_outbound_read_timeout_is_the_configured_one(
    database_url: str, other_service: str
) -> None:
    settings = make_settings(database_url, outbound_read_timeout=0.3)
    async with app_client(settings) as client:
        started = time.monotonic()
        response = await client.get("/test/outbound", params={"url": f"{other_service}/hang"})
        elapsed = time.monotonic() - started
    assert response.status_code == 500  # an unhandled ReadTimeout, as a problem document
    assert response.headers["content-type"] == "application/problem+json"
    assert elapsed < 2  # the server would have answered after 3 s
