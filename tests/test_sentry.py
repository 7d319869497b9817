"""What an error report carries: the request ID, and no credential of any kind.

First the scrubber alone (the ``before_send`` hook), fed an event shaped like the
SDK's; then end to end: the real server, a real SDK, and a stand-in for Sentry's
ingestion endpoint on loopback receiving the envelope.
"""

import gzip
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qs

import httpx
import pytest

from app.core.context import request_id_var
from app.core.redaction import REDACTED
from app.ops.sentry import scrub_event
from tests.support.gunicorn import GunicornServer, production_env


def test_event_is_tagged_with_the_request_id_and_stripped_of_credentials() -> None:
    event = {
        "exception": {"values": [{"type": "RuntimeError", "value": "boom"}]},
        "request": {
            "url": "http://api.example/api/v1/orders",
            "query_string": "access_token=qs-secret&page=2",
            "headers": {
                "Authorization": "Bearer h-secret",
                "Cookie": "s=c-secret",
                "Accept": "*/*",
            },
            "cookies": {"session": "c-secret"},
            "data": {"email": "a@example.com", "password": "p-secret"},
        },
        "extra": {"client_secret": "x-secret"},
        "breadcrumbs": {"values": [{"data": {"api_key": "k-secret", "status": 200}}]},
    }
    token = request_id_var.set("rid-sentry-1")
    try:
        scrubbed = scrub_event(event, None)
    finally:
        request_id_var.reset(token)

    assert scrubbed["tags"]["request_id"] == "rid-sentry-1"
    assert scrubbed["exception"] == event["exception"]
    request = scrubbed["request"]
    assert parse_qs(request["query_string"]) == {"access_token": [REDACTED], "page": ["2"]}
    assert request["headers"] == {"Authorization": REDACTED, "Cookie": REDACTED, "Accept": "*/*"}
    assert request["cookies"] == REDACTED
    assert request["data"] == {"email": "a@example.com", "password": REDACTED}
    assert scrubbed["breadcrumbs"]["values"][0]["data"] == {"api_key": REDACTED, "status": 200}
    for value in ("qs-secret", "h-secret", "c-secret", "p-secret", "x-secret", "k-secret"):
        assert value not in str(scrubbed)


class SentryIngest(BaseHTTPRequestHandler):
    """A stand-in for Sentry's ingestion endpoint: keeps every envelope it receives."""

    envelopes: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.envelopes.append(body)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_: object) -> None:
        """Keep the test output clean."""


@pytest.fixture
def sentry_ingest() -> Iterator[tuple[str, list[bytes]]]:
    SentryIngest.envelopes = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), SentryIngest)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://publickey@127.0.0.1:{server.server_address[1]}/1", SentryIngest.envelopes
    server.shutdown()
    server.server_close()


def test_unhandled_exception_reaches_sentry_without_any_credential(
    database_url: str, sentry_ingest: tuple[str, list[bytes]]
) -> None:
    dsn, envelopes = sentry_ingest
    secrets_sent = {
        "bearer": "bearer-secret-8d1f",
        "cookie": "cookie-secret-5e2a",
        "password": "password-secret-77c0",
        "query": "query-secret-19ab",
    }
    env = production_env(database_url, SENTRY_DSN=dsn)
    with GunicornServer(env, app="tests.apps:create_test_app()") as server:
        response = httpx.post(
            f"{server.base_url}/test/boom",
            params={"access_token": secrets_sent["query"]},
            headers={
                "Authorization": f"Bearer {secrets_sent['bearer']}",
                "X-Request-ID": "sentry-req-1",
            },
            cookies={"session": secrets_sent["cookie"]},
            json={"email": "a@example.com", "password": secrets_sent["password"]},
        )
        assert response.status_code == 500
        deadline = time.monotonic() + 10
        while not any(b'"exception"' in envelope for envelope in envelopes):
            assert time.monotonic() < deadline, "no event reached the Sentry stand-in"
            time.sleep(0.1)

    raw = b"\n".join(envelopes).decode()
    for value in secrets_sent.values():
        assert value not in raw
    event = next(
        json.loads(line)
        for line in raw.splitlines()
        if line.startswith("{") and '"exception"' in line
    )
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    # The app's own scrubber ran on this very event (the SDK's marks are different).
    assert parse_qs(event["request"]["query_string"]) == {"access_token": [REDACTED]}
    assert event["tags"]["request_id"] == "sentry-req-1"
    assert event["environment"] == "production"
