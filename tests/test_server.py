"""The real server: gunicorn with uvicorn workers, started as production starts it.

These tests prove what only a real process can: every printed line is JSON, secrets
never reach the output, in-flight requests survive SIGTERM, and readiness follows
the database through an outage without a restart.
"""

import json
import secrets
import signal
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.support.database import database_behind_proxy
from tests.support.gunicorn import TEST_APP, GunicornServer, production_env
from tests.support.journey import run_user_journey

JWT_SECRET = secrets.token_hex(32)


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    """Two workers, a secret the tests look for in the output, a short drain."""
    defaults = {"JWT_SECRET_KEY": JWT_SECRET, "WEB_CONCURRENCY": "2", "SHUTDOWN_DRAIN_SECONDS": "1"}
    return production_env(database_url, **(defaults | extra))


def parsed_lines(server: GunicornServer) -> list[dict[str, object]]:
    return [json.loads(line) for line in server.lines if line.strip()]


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[GunicornServer]:
    with GunicornServer(
        server_env(
            database_url,
            DB_MAX_CONNECTIONS="10",
            SLOW_REQUEST_MS="500",
            PASSWORD_HASH_CONCURRENCY="3",
            MEMORY_LIMIT_MB="100",
        ),
        app=TEST_APP,
    ) as running:
        yield running


def test_probes_answer_under_gunicorn(server: GunicornServer) -> None:
    health = httpx.get(f"{server.base_url}/health")
    ready = httpx.get(f"{server.base_url}/ready")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()["status"]) == (200, "ready")


def test_a_user_journey_works_end_to_end_under_gunicorn(server: GunicornServer) -> None:
    run_user_journey(server.base_url)


def test_chunked_oversized_body_is_refused_by_the_real_server(server: GunicornServer) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"x" * 65536

    response = httpx.post(f"{server.base_url}/test/echo", content=chunks())
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


def test_every_line_is_json_carries_request_ids_and_no_secret(
    server: GunicornServer, database_url: str
) -> None:
    bearer = "eyJhbGciOiJIUzI1NiJ9.bearer-token-9c4d"
    cookie = "session-cookie-0b3f77"
    password = "body-password-e51a2c"
    failed = httpx.post(
        f"{server.base_url}/test/boom",
        headers={"Authorization": f"Bearer {bearer}", "X-Request-ID": "req-boom-1"},
        cookies={"session": cookie},
        json={"email": "a@example.com", "password": password},
    )
    missing = httpx.get(f"{server.base_url}/missing", headers={"X-Request-ID": "req-404-1"})
    refused = httpx.get(
        f"{server.base_url}/api/v1/users/me",
        headers={"Authorization": f"Bearer {bearer}", "X-Request-ID": "req-401-1"},
    )
    assert (failed.status_code, missing.status_code, refused.status_code) == (500, 404, 401)
    time.sleep(0.3)  # let the workers flush their lines

    lines = parsed_lines(server)  # raises if any line is not JSON
    assert all(isinstance(line, dict) for line in lines)
    assert "\u001b" not in server.output  # no terminal colour codes in machine logs
    by_request = {line.get("request_id") for line in lines}
    assert {"req-boom-1", "req-404-1"} <= by_request
    error = next(line for line in lines if line["event"] == "unhandled exception")
    assert error["request_id"] == "req-boom-1"
    assert error["level"] == "error"
    auth_failure = next(line for line in lines if line["event"] == "authentication failed")
    assert auth_failure["request_id"] == "req-401-1"
    assert auth_failure["reason"] == "malformed token"
    access = next(line for line in lines if line.get("request_id") == "req-404-1")
    assert access["event"] == "request"
    assert {access["method"], access["path"], access["status"]} == {"GET", "/missing", 404}
    assert isinstance(access["duration_ms"], float)
    assert access["client"] == "127.0.0.1"

    database_password = make_url(database_url).password
    for secret in (bearer, cookie, password, JWT_SECRET, database_password):
        assert secret is None or secret not in server.output


def test_slow_request_logs_a_warning_with_route_duration_and_request_id(
    server: GunicornServer,
) -> None:
    for seconds, request_id in ((0.6, "slow-1"), (0.1, "fast-1")):
        response = httpx.get(
            f"{server.base_url}/test/slow",
            params={"seconds": seconds},
            headers={"X-Request-ID": request_id},
        )
        assert response.status_code == 200
    time.sleep(0.3)
    warnings = [line for line in parsed_lines(server) if line["event"] == "slow request"]
    assert [line["request_id"] for line in warnings] == ["slow-1"]
    assert warnings[0]["level"] == "warning"
    assert warnings[0]["route"] == "/test/slow"
    assert float(str(warnings[0]["duration_ms"])) >= 600


def test_probe_requests_are_not_logged_at_info(server: GunicornServer) -> None:
    httpx.get(f"{server.base_url}/health", headers={"X-Request-ID": "probe-quiet-1"})
    httpx.get(f"{server.base_url}/ready", headers={"X-Request-ID": "probe-quiet-2"})
    httpx.get(f"{server.base_url}/missing", headers={"X-Request-ID": "after-probes"})
    time.sleep(0.3)
    ids = {line.get("request_id") for line in parsed_lines(server)}
    assert "after-probes" in ids
    assert not {"probe-quiet-1", "probe-quiet-2"} & ids


def test_boot_lines_report_sizing_and_warn_about_the_connection_and_memory_budgets(
    server: GunicornServer,
) -> None:
    lines = parsed_lines(server)
    boot = next(line for line in lines if line["event"] == "server ready")
    assert boot["workers"] == 2
    assert boot["db_connection_budget"] == 2 * (5 + 5)
    assert boot["graceful_timeout_s"] == 40
    assert boot["hashing_memory_mb"] == 2 * 3 * 64  # workers x slots x 64 MiB per hash
    assert boot["memory_limit_mb"] == 100
    assert isinstance(boot["memory_estimate_mb"], int)
    assert boot["memory_estimate_mb"] > 384  # the workers themselves count too
    warnings = {str(line["event"]): line for line in lines if line["level"] == "warning"}
    connections = next(line for event, line in warnings.items() if "DB_MAX_CONNECTIONS" in event)
    assert (connections["db_connection_budget"], connections["db_max_connections"]) == (20, 10)
    memory = next(line for event, line in warnings.items() if "memory limit" in event)
    assert memory["memory_limit_mb"] == 100
    assert memory["memory_estimate_mb"] == boot["memory_estimate_mb"]


def test_sigterm_lets_in_flight_request_finish_and_exits_zero(database_url: str) -> None:
    with GunicornServer(server_env(database_url), app=TEST_APP) as server:
        assert httpx.get(f"{server.base_url}/ready").status_code == 200
        result: dict[str, httpx.Response] = {}

        def slow_request() -> None:
            result["slow"] = httpx.get(f"{server.base_url}/test/slow?seconds=2", timeout=10)

        in_flight = threading.Thread(target=slow_request)
        in_flight.start()
        time.sleep(0.5)  # the request is now sleeping inside a worker
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)  # inside SHUTDOWN_DRAIN_SECONDS: still serving, no longer ready
        draining = httpx.get(f"{server.base_url}/ready")
        alive = httpx.get(f"{server.base_url}/health")
        code = server.process.wait(timeout=20)
        in_flight.join(timeout=10)

    assert draining.status_code == 503
    assert draining.json() == {"status": "unavailable", "checks": {"shutdown": "draining"}}
    assert alive.status_code == 200
    assert code == 0
    assert result["slow"].status_code == 200
    assert result["slow"].json() == {"slept": 2.0}
    events = [line["event"] for line in parsed_lines(server)]
    assert events.count("worker stopped, database pool closed") == 2
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.base_url}/health")


def test_ready_fails_fast_on_database_outage_and_recovers_without_restart(
    database_url: str,
) -> None:
    with database_behind_proxy(database_url) as (proxy, proxied):
        env = server_env(proxied, WEB_CONCURRENCY="1", READY_TIMEOUT="1")
        with GunicornServer(env) as server:
            ready = f"{server.base_url}/ready"
            assert httpx.get(ready).status_code == 200

            proxy.cut()
            time.sleep(1.1)  # let the last good result age out of the readiness cache
            started = time.monotonic()
            outage = httpx.get(ready, timeout=10)
            elapsed = time.monotonic() - started
            assert outage.status_code == 503
            assert outage.json() == {"status": "unavailable", "checks": {"database": "timeout"}}
            assert elapsed < 1 + 0.5
            assert httpx.get(f"{server.base_url}/health").status_code == 200

            proxy.restore()
            deadline = time.monotonic() + 10
            while httpx.get(ready, timeout=5).status_code != 200:
                assert time.monotonic() < deadline, (
                    "not ready again 10 s after the database returned"
                )
                time.sleep(0.2)
            booted = [line for line in server.lines if "Booting worker" in line]
            assert len(booted) == 1  # the same worker recovered; nothing restarted
            assert server.process.poll() is None


def test_workers_collect_garbage_with_the_app_frozen_also_after_a_reload(
    database_url: str,
) -> None:
    """The master imports with collection off; every worker, first or reloaded, has it on."""

    def collection() -> dict[str, int]:
        response = httpx.get(f"{running.base_url}/test/garbage-collection")
        assert response.status_code == 200
        state: dict[str, int] = response.json()
        return state

    with GunicornServer(server_env(database_url, WEB_CONCURRENCY="1"), app=TEST_APP) as running:
        first = collection()
        (worker,) = running.worker_pids()
        running.process.send_signal(signal.SIGHUP)  # re-reads gunicorn.conf.py, new workers
        deadline = time.monotonic() + 20
        while not (pids := running.worker_pids()) or worker in pids:
            assert time.monotonic() < deadline, "the worker was not replaced after SIGHUP"
            time.sleep(0.1)
        running.wait_until_healthy()
        reloaded = collection()
    for state in (first, reloaded):
        assert state["enabled"]
        assert state["frozen"] > 10_000  # the imported app, shared with the master
