"""Request heads against real gunicorn: too large, too many fields, too slow.

The worker refuses a head over ``HTTP_MAX_HEADER_BYTES`` or ``HTTP_MAX_HEADERS`` with
a 431 problem and closes the connection; it cuts one still arriving after
``HTTP_HEADER_TIMEOUT_SECONDS`` (2 s here), while ``/health`` keeps answering. Heads are
written on raw sockets: no client library sends what an attacker does.
"""

import contextlib
import json
import select
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.gunicorn import TEST_APP, GunicornServer, production_env
from tests.support.problems import assert_problem

Report = Callable[[str], None]
HEADER_TIMEOUT = 2.0
SLACK = 3.0  # allowed past the timeout before a slow head must be cut


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[GunicornServer]:
    env = production_env(database_url, HTTP_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT))
    with GunicornServer(env, app=TEST_APP) as running:
        yield running


def figure(report: Report, line: str) -> None:
    print(line)  # noqa: T201  (the figures this suite measures, for -s)
    report(line)


def connect(server: GunicornServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=15)


def read_ok_response(connection: socket.socket) -> bytes:
    """One whole response of /test/ok: its head and body may arrive in separate reads."""
    answer = b""
    while not answer.endswith(b'{"status":"ok"}'):
        chunk = connection.recv(65536)
        if not chunk:
            break
        answer += chunk
    return answer


def read_to_end(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes; a reset ends it too."""
    answer = b""
    try:
        while chunk := connection.recv(65536):
            answer += chunk
    except ConnectionResetError:
        pass
    return answer


def as_response(answer: bytes) -> httpx.Response:
    """One raw HTTP/1.1 answer (with a Content-Length) as an httpx response."""
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = [(name, value) for name, _, value in (line.partition(": ") for line in lines)]
    return httpx.Response(int(status_line.split(" ")[1]), headers=headers, content=body)


def request_head(*fields: str, path: str = "/health") -> bytes:
    return "".join([f"GET {path} HTTP/1.1\r\nHost: x\r\n", *(f"{f}\r\n" for f in fields)]).encode()


def assert_refused(response: httpx.Response, status: int, request_id: str) -> None:
    body = assert_problem(response, status)
    assert response.headers["connection"] == "close"
    assert body["request_id"] == request_id
    assert "server" not in response.headers
    assert "date" in response.headers


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def test_a_32_kib_header_is_a_431_problem(server: GunicornServer) -> None:
    head = request_head("X-Request-ID: big-header-1", "X-Big: " + "a" * 32768) + b"\r\n"
    with connect(server) as connection:
        connection.sendall(head)
        response = as_response(read_to_end(connection))
    assert_refused(response, 431, "big-header-1")
    assert "16384 bytes" in response.json()["detail"]
    assert response.json()["instance"] == "/health"


# After the last chunk of a chunked body come trailer fields, parsed like a head.
CHUNKED_UPLOAD = b"POST /test/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
LAST_CHUNK = b"1\r\na\r\n0\r\n"


@pytest.mark.parametrize(
    ("field", "start"),
    [
        ("header", request_head("X-Request-ID: huge-header-1")),
        ("trailer", CHUNKED_UPLOAD + LAST_CHUNK),
    ],
)
def test_a_1_mib_field_is_cut_off_early_without_the_worker_growing(
    server: GunicornServer, report: Report, field: str, start: bytes
) -> None:
    (worker,) = server.worker_pids()
    rss_before, peak_before = rss_kib(worker), rss_kib(worker, "VmHWM")
    total, piece = 1 << 20, b"a" * 16384
    with connect(server) as connection:
        connection.sendall(start + b"X-Huge: ")
        sent, answer = 0, b""
        try:
            while sent < total and not answer:
                connection.sendall(piece)
                sent += len(piece)
                if select.select([connection], [], [], 0.005)[0]:
                    answer = read_to_end(connection) or b"closed"
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while the rest was on its way
    rss_after, peak_after = rss_kib(worker), rss_kib(worker, "VmHWM")
    figure(
        report,
        f"1 MiB {field} in 16 KiB pieces: {answer[:12].decode()} after {sent // 1024} KiB sent; "
        f"worker RSS {rss_before / 1024:.1f} -> {rss_after / 1024:.1f} MiB, peak "
        f"{peak_before / 1024:.1f} -> {peak_after / 1024:.1f} MiB",
    )
    assert sent < total / 4
    if field == "header":
        assert_refused(as_response(answer), 431, "huge-header-1")
    assert rss_after - rss_before < 4096
    assert peak_after - peak_before < 4096


def test_150_headers_are_a_431_problem(server: GunicornServer) -> None:
    headers = {f"X-Field-{number}": "v" for number in range(150)}
    response = httpx.get(
        f"{server.base_url}/health", headers={**headers, "X-Request-ID": "many-fields-1"}
    )
    assert_refused(response, 431, "many-fields-1")
    assert "100 header fields" in response.json()["detail"]


def test_ordinary_requests_under_the_limits_are_served(server: GunicornServer) -> None:
    """Many ordinary fields; a body much larger than the head limit, arriving with the head;
    two requests in one write; a request busy for longer than the head timeout."""
    headers = {f"X-Field-{number}": "v" * 100 for number in range(90)}
    response = httpx.get(f"{server.base_url}/test/ok", headers=headers)
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert "server" not in response.headers
    assert "date" in response.headers

    echoed = httpx.post(f"{server.base_url}/test/echo", content=b"x" * 200_000)
    assert echoed.json() == {"received_bytes": 200_000}
    chunked = httpx.post(f"{server.base_url}/test/echo", content=iter([b"x" * 65536] * 4))
    assert chunked.json() == {"received_bytes": 4 * 65536}

    with connect(server) as connection:
        connection.sendall((request_head(path="/test/ok") + b"\r\n") * 2)
        answers = b""
        while answers.count(b"HTTP/1.1 200 OK") < 2 and (chunk := connection.recv(65536)):
            answers += chunk
    assert answers.count(b"HTTP/1.1 200 OK") == 2

    slow = httpx.get(
        f"{server.base_url}/test/slow", params={"seconds": HEADER_TIMEOUT + 1}, timeout=10
    )
    assert slow.status_code == 200


def test_an_idle_keep_alive_connection_outlives_the_head_timeout(server: GunicornServer) -> None:
    """Between requests the keep-alive timeout (GUNICORN_KEEPALIVE) applies, not the head
    timeout."""
    with connect(server) as connection:
        for _ in range(2):
            connection.sendall(request_head(path="/test/ok") + b"\r\n")
            assert read_ok_response(connection).startswith(b"HTTP/1.1 200 OK")
            time.sleep(HEADER_TIMEOUT + 1)


def test_heads_arriving_too_slowly_are_cut_while_health_answers(
    server: GunicornServer, report: Report
) -> None:
    """A header a second (also as trailer fields, after a chunked body); nothing at all;
    a second request dripping in after a first."""
    started = time.monotonic()
    dripping = [connect(server) for _ in range(5)]
    trailing = connect(server)
    trailing.sendall(CHUNKED_UPLOAD + LAST_CHUNK)
    silent = connect(server)
    kept_alive = connect(server)
    kept_alive.sendall(request_head(path="/test/ok") + b"\r\n")
    assert read_ok_response(kept_alive).startswith(b"HTTP/1.1 200 OK")
    for connection in (*dripping, kept_alive):
        connection.sendall(request_head())
    everyone = [*dripping, trailing, silent, kept_alive]
    waiting = set(everyone)
    closed_after: list[float] = []
    health: list[int] = []

    def closed(connection: socket.socket) -> None:
        closed_after.append(time.monotonic() - started)
        waiting.discard(connection)

    next_header, number = started + 1, 0
    while waiting and time.monotonic() < started + HEADER_TIMEOUT + SLACK + 1:
        readable, _, _ = select.select(list(waiting), [], [], next_header - time.monotonic())
        for connection in readable:
            with contextlib.suppress(ConnectionResetError):
                assert connection.recv(65536) == b""  # nothing is said on closing
            closed(connection)
        if time.monotonic() >= next_header:
            next_header, number = next_header + 1, number + 1
            for connection in waiting - {silent}:
                try:
                    connection.sendall(f"X-Slow-{number}: v\r\n".encode())
                except (BrokenPipeError, ConnectionResetError):
                    closed(connection)
            health.append(httpx.get(f"{server.base_url}/health", timeout=2).status_code)
    for connection in everyone:
        connection.close()
    figure(
        report,
        f"heads arriving a header a second, {HEADER_TIMEOUT:g} s timeout: "
        f"{len(closed_after)} of {len(everyone)} connections closed, after "
        f"{min(closed_after, default=0):.2f}-{max(closed_after, default=0):.2f} s; "
        f"/health {health.count(200)} x 200 of {len(health)} meanwhile",
    )
    assert waiting == set()
    assert all(HEADER_TIMEOUT - 0.1 < after < HEADER_TIMEOUT + SLACK for after in closed_after)
    assert health == [200] * len(health)
    assert len(health) >= 2


def test_control_characters_in_a_header_are_a_400_problem(server: GunicornServer) -> None:
    head = request_head("X-Request-ID: bad-header-1", "User-Agent: \x1b[31mx") + b"\r\n"
    with connect(server) as connection:
        connection.sendall(head)
        response = as_response(read_to_end(connection))
    assert_refused(response, 400, "bad-header-1")


def test_each_refusal_logged_one_json_line(server: GunicornServer) -> None:
    def refusals() -> list[tuple[str, int]]:
        lines = map(json.loads, filter(None, server.lines))
        return [
            (line["request_id"], line["status"])
            for line in lines
            if line.get("event") == "request refused"
        ]

    expected = [("big-header-1", 431), ("many-fields-1", 431), ("bad-header-1", 400)]
    deadline = time.monotonic() + 5
    while not set(expected) <= set(refusals()) and time.monotonic() < deadline:
        time.sleep(0.05)  # the output is read on a thread
    assert [refusals().count(refusal) for refusal in expected] == [1, 1, 1]
