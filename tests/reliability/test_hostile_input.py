"""Hostile input against real gunicorn: every request is a 4xx, one log line, no echo.

Each case sends its own well-formed ``X-Request-ID`` (or a hostile one it expects to
see replaced), so the test finds the request's one access line; every line the
server wrote must be JSON, and nothing hostile (a marker, a control character, an
escape sequence) may come back in a response header or reach a log line raw.
"""

import asyncio
import json
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any
from uuid import uuid4

import httpx
import jwt
import pytest

from app.core.pagination import CursorCodec  # example:items
from tests.support.accounts import ME, USERS, auth_headers
from tests.support.gunicorn import GunicornServer, production_env
from tests.support.problems import assert_problem
from tests.support.settings import FAST_PASSWORD_HASHING_ENV

Report = Callable[[str], None]
MARKER = "h0st1le"  # in every hostile value, so an echo is easy to find
ANSI = "\x1b[31m"
JWT_SECRET = "k" * 64


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[GunicornServer]:
    env = production_env(
        database_url,
        JWT_SECRET_KEY=JWT_SECRET,
        REQUEST_TIMEOUT_SECONDS="2",
        MAX_REQUEST_BODY_BYTES="65536",
        **FAST_PASSWORD_HASHING_ENV,
    )
    with GunicornServer(env) as running:
        yield running


@pytest.fixture(scope="module")
def headers(server: GunicornServer) -> dict[str, str]:
    async def account() -> dict[str, str]:
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            return await auth_headers(client)

    return asyncio.run(account())


def request_id() -> str:
    return f"hostile-{uuid4().hex}"


def access_lines(server: GunicornServer, rid: str) -> list[dict[str, Any]]:
    time.sleep(0.05)  # the line is written as the response goes out
    lines = [json.loads(line) for line in server.lines if rid in line]
    return [line for line in lines if line.get("event") == "request"]


def assert_refused(
    server: GunicornServer, response: httpx.Response, status: int, rid: str
) -> dict[str, Any]:
    """A problem with this status, the request's one access line, nothing echoed."""
    body = assert_problem(response, status)
    assert response.headers["X-Request-ID"] == rid
    for name, value in response.headers.items():
        assert MARKER not in name + value
    assert [line["status"] for line in access_lines(server, rid)] == [status]
    return body


def raw_request(server: GunicornServer, data: bytes) -> bytes:
    """Bytes sent as they are (no client would send them), and the whole answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(data)
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
        return answer


def test_malformed_nested_mistyped_and_undecodable_bodies_are_400_or_422(
    server: GunicornServer, headers: dict[str, str], report: Report
) -> None:
    outcomes = []
    bodies = {
        "malformed": (b'{"email": "' + MARKER.encode(), "application/json"),
        "deeply nested": (b"[" * 30_000 + b"]" * 30_000, "application/json"),
        "wrong content type": (f"email={MARKER}".encode(), "text/plain"),
        "invalid UTF-8": (b'{"email": "\xff\xfe' + MARKER.encode() + b'"}', "application/json"),
        "not an object": (b"[1, 2, 3]", "application/json"),
    }
    for case, (body, content_type) in bodies.items():
        rid = request_id()
        response = httpx.post(
            f"{server.base_url}{USERS}",
            content=body,
            headers={**headers, "Content-Type": content_type, "X-Request-ID": rid},
        )
        assert response.status_code in (400, 422), (case, response.status_code)
        assert_refused(server, response, response.status_code, rid)
        assert MARKER not in response.text, case
        outcomes.append(f"{case} {response.status_code}")
    report("hostile bodies: " + ", ".join(outcomes))


def test_bodies_over_the_limit_are_413_with_or_without_a_length(
    server: GunicornServer, headers: dict[str, str]
) -> None:
    big = b'{"email": "' + b"x" * 70_000 + b'"}'

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    for content in (big, chunks()):
        rid = request_id()
        response = httpx.post(
            f"{server.base_url}{USERS}",
            content=content,
            headers={**headers, "X-Request-ID": rid, "Content-Type": "application/json"},
        )
        assert_refused(server, response, 413, rid)


def test_a_body_dripping_in_slower_than_the_deadline_is_408(
    server: GunicornServer, headers: dict[str, str]
) -> None:
    def drip() -> Iterator[bytes]:
        yield b'{"email": "'
        for _ in range(10):
            time.sleep(0.5)
            yield b"x"
        yield b'"}'

    rid = request_id()
    started = time.monotonic()
    response = httpx.post(
        f"{server.base_url}{USERS}",
        content=drip(),
        headers={**headers, "X-Request-ID": rid, "Content-Type": "application/json"},
        timeout=15,
    )
    assert_refused(server, response, 408, rid)
    assert time.monotonic() - started < 2 + 1.5


def test_nul_bytes_are_422(server: GunicornServer, headers: dict[str, str]) -> None:
    base = server.base_url
    for url, body in (
        (f"{base}{USERS}", {"email": f"a\u0000{MARKER}@example.com", "password": "p" * 10}),
        (f"{base}{USERS}", {"email": "nul@example.com", "password": f"p\u0000{MARKER}xx"}),
        # example:items:begin
        (f"{base}/api/v1/items", {"title": f"t\u0000{MARKER}"}),
        (f"{base}/api/v1/items", {"title": "t", "description": f"d\u0000{MARKER}"}),
        # example:items:end
    ):
        rid = request_id()
        response = httpx.post(url, json=body, headers={**headers, "X-Request-ID": rid})
        assert_refused(server, response, 422, rid)
        assert MARKER not in response.text


# example:items:begin
def test_sql_metacharacters_are_only_text(server: GunicornServer, headers: dict[str, str]) -> None:
    base = server.base_url
    title = "'; DROP TABLE items; -- \" \\ % _ $1 {{x}}"
    created = httpx.post(f"{base}/api/v1/items", json={"title": title}, headers=headers)
    assert created.status_code == 201
    read = httpx.get(f"{base}/api/v1/items/{created.json()['id']}", headers=headers)
    assert read.json()["title"] == title


def test_out_of_range_numbers_are_422(server: GunicornServer, headers: dict[str, str]) -> None:
    for path in (
        f"/api/v1/items/{2**63}",
        "/api/v1/items/-1",
        "/api/v1/items/1e3",
        f"/api/v1/items?limit={10**20}",
        "/api/v1/items?limit=NaN",
    ):
        rid = request_id()
        response = httpx.get(f"{server.base_url}{path}", headers={**headers, "X-Request-ID": rid})
        assert_refused(server, response, 422, rid)


def test_signed_cursors_of_another_shape_are_400_and_never_logged(
    server: GunicornServer, headers: dict[str, str]
) -> None:
    """Signed with the server's own cursor key, so only the shape of the position is wrong."""
    codec = CursorCodec(JWT_SECRET.encode())  # as the app derives it from JWT_SECRET_KEY
    payloads: list[Any] = [
        [MARKER, 1],
        True,
        2**64,
        MARKER,
        {MARKER: 1},
        {"before_id": MARKER},
        {"before_id": True},
        {"before_id": 1.5},
        {"before_id": -1},
        {"before_id": 2**63},  # one past the largest BIGINT
        {"before_id": 1, MARKER: 2},
    ]
    first_line = len(server.lines)
    for payload in payloads:
        cursor = codec.encode(payload)
        rid = request_id()
        response = httpx.get(
            f"{server.base_url}/api/v1/items",
            params={"cursor": cursor},
            headers={**headers, "X-Request-ID": rid},
        )
        body = assert_refused(server, response, 400, rid)
        assert body["detail"] == "The cursor is not valid."
        for quoted in (cursor, cursor.split(".")[0]):
            assert quoted not in response.text
            assert quoted not in server.output, payload
    written = "\n".join(server.lines[first_line:])
    for quoted in (MARKER, str(2**64), str(2**63), "unhandled exception"):
        assert quoted not in written


# example:items:end
def test_forged_expired_and_unsigned_tokens_are_401(server: GunicornServer) -> None:
    now = int(time.time())
    claims = {"sub": "1", "iss": "fastapi-service", "aud": "fastapi-service", "iat": now}
    tokens = {
        "forged": jwt.encode({**claims, "exp": now + 600}, "not-the-key" * 4, algorithm="HS256"),
        "expired": jwt.encode({**claims, "exp": now - 600}, JWT_SECRET, algorithm="HS256"),
        "alg none": jwt.encode({**claims, "exp": now + 600}, "", algorithm="none"),
        "garbage": f"{MARKER}.<script>.x",
    }
    for case, token in tokens.items():
        rid = request_id()
        response = httpx.get(
            f"{server.base_url}/api/v1/users/me",
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": rid},
        )
        assert_refused(server, response, 401, rid)
        assert token not in server.output, case


def test_hostile_request_ids_and_user_agents_are_neither_echoed_nor_logged_raw(
    server: GunicornServer,
) -> None:
    for hostile in (f"{MARKER}%0d%0aSet-Cookie: x=1", f'"<script>{MARKER}', "a" * 129):
        response = httpx.get(
            f"{server.base_url}{ME}",
            headers={"X-Request-ID": hostile, "User-Agent": f"{MARKER} () {{ :; }};"},
        )
        assert_problem(response, 401)
        assert response.headers["X-Request-ID"] != hostile
        assert MARKER not in "".join(f"{k}{v}" for k, v in response.headers.items())
    # Control characters in a header (a bare CR, an ANSI escape) are refused by the HTTP
    # parser itself, before the app: a 400 problem, nothing echoed.
    for header in (f"X-Request-ID: a\r{MARKER}", f"User-Agent: {ANSI}{MARKER}"):
        answer = raw_request(
            server, f"GET /health HTTP/1.1\r\nHost: x\r\n{header}\r\n\r\n".encode()
        )
        assert answer.startswith(b"HTTP/1.1 400"), answer[:100]
        assert b"\r\ncontent-type: application/problem+json\r\n" in answer
        assert MARKER.encode() not in answer


def test_very_long_urls_and_headers_are_refused_cleanly(server: GunicornServer) -> None:
    rid = request_id()
    long_path = "/api/v1/" + "a" * 8000
    response = httpx.get(f"{server.base_url}{long_path}", headers={"X-Request-ID": rid})
    assert_refused(server, response, 404, rid)

    rid = request_id()
    response = httpx.get(
        f"{server.base_url}{ME}",
        headers={"X-Request-ID": rid, "X-Padding": MARKER * 1000},
    )
    assert_refused(server, response, 401, rid)
    # A request line past HTTP_MAX_HEADER_BYTES: refused before the app.
    answer = raw_request(server, f"GET /{'a' * 100_000} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 431"), answer[:100]
    assert b"Traceback" not in answer


def test_every_line_the_server_wrote_is_json_without_raw_control_characters(
    server: GunicornServer, report: Report
) -> None:
    lines = [line for line in server.lines if line.strip()]
    parsed = [json.loads(line) for line in lines]
    assert not any(ANSI in line or "\r" in line for line in lines)
    assert [line for line in lines if MARKER in line] == []
    report(
        f"hostile input: {len(lines)} log lines, all JSON, no raw control character; "
        f"{sum(line.get('event') == 'request' for line in parsed)} access lines"
    )
