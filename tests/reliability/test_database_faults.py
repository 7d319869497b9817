"""Database faults against real gunicorn (two workers), under load, in bounded time.

The database sits behind a TCP proxy of the test's own: it goes away (connections
reset, new ones refused), turns slow (every byte held past the request deadline), or
kills the pooled connections itself (``pg_terminate_backend``, as a restart or a
failover does). Each test prints what it measured.
"""

import asyncio
import time
from collections.abc import Callable
from uuid import uuid4

import httpx

from tests.support.accounts import ME, PASSWORD, USERS, auth_headers, unique_email
from tests.support.database import database_behind_proxy, fetch_column
from tests.support.gunicorn import TEST_APP, GunicornServer, production_env
from tests.support.load import SteadyLoad
from tests.support.settings import FAST_PASSWORD_HASHING_ENV

Report = Callable[[str], None]


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    """Two workers unless told otherwise; cheap password hashing."""
    return production_env(
        database_url, **{"WEB_CONCURRENCY": "2", **FAST_PASSWORD_HASHING_ENV, **extra}
    )


def an_account_to_read(base_url: str) -> tuple[str, dict[str, str]]:
    """A read of a new account's row (the token checked, one query), and its headers."""

    async def log_in() -> dict[str, str]:
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            return await auth_headers(client)

    return ME, asyncio.run(log_in())


def wait_until_ready(base_url: str, timeout: float = 10) -> float:
    """Seconds until ``/ready`` answered 200."""
    started = time.monotonic()
    while httpx.get(f"{base_url}/ready", timeout=5).status_code != 200:
        assert time.monotonic() - started < timeout, f"not ready within {timeout} s"
        time.sleep(0.05)
    return time.monotonic() - started


def burst(base_url: str, path: str, headers: dict[str, str], count: int) -> list[int]:
    async def send() -> list[int]:
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client:
            responses = await asyncio.gather(*(client.get(path) for _ in range(count)))
        return [response.status_code for response in responses]

    return asyncio.run(send())


def test_database_gone_for_5_s_under_load(database_url: str, report: Report) -> None:
    with (
        database_behind_proxy(database_url) as (proxy, proxied),
        GunicornServer(server_env(proxied, READY_CACHE_SECONDS="0.2")) as server,
    ):
        path, headers = an_account_to_read(server.base_url)
        with SteadyLoad(server.base_url, path, clients=16, headers=headers) as load:
            time.sleep(2)
            gone = time.monotonic()
            proxy.reset()
            time.sleep(2.5)
            health_during = httpx.get(f"{server.base_url}/health").status_code
            ready_during = httpx.get(f"{server.base_url}/ready").status_code
            time.sleep(2.5)
            back = time.monotonic()
            proxy.restore()
            ready_after = wait_until_ready(server.base_url)
            time.sleep(1)

    # Requests already past their query when the database went are served: from then on.
    during = load.between(gone + 0.1, back)
    after = load.between(back, time.monotonic())
    first_success = min(o.started + o.seconds for o in after if o.status == 200)
    errors = [o for o in load.outcomes if o.status is None or o.status == 500]
    slow = [o for o in during if o.seconds > 2]
    report(
        f"database gone 5 s, 16 clients, 2 workers: {len(load.outcomes)} requests, "
        f"{len(during)} during the outage: {sum(o.status == 503 for o in during)} answered 503 "
        f"and {sum(o.status == 200 for o in during)} 200, "
        f"{len(slow)} over 2 s, max {max(o.seconds for o in during):.2f} s; "
        f"{len(errors)} 500s or dropped; first 200 {first_success - back:.2f} s after the "
        f"database returned, /ready 200 again after {ready_after:.2f} s"
    )
    # A request can meet the database just before it goes or just as it returns: 200.
    assert {o.status for o in during} <= {200, 503}
    assert sum(o.status == 503 for o in during) > 0.9 * len(during)
    assert errors == []
    assert slow == []
    assert (health_during, ready_during) == (200, 503)
    assert first_success - back < 2


def test_slow_database_requests_end_by_their_deadline_and_no_connection_leaks(
    database_url: str, report: Report
) -> None:
    env = server_env(
        database_url,
        REQUEST_TIMEOUT_SECONDS="1",
        WEB_CONCURRENCY="1",
        DB_POOL_SIZE="2",
        DB_POOL_TIMEOUT="0.5",
    )
    with (
        database_behind_proxy(database_url) as (proxy, proxied),
        GunicornServer({**env, "DATABASE_URL": proxied}, app=TEST_APP) as server,
    ):
        path, headers = an_account_to_read(server.base_url)
        proxy.delay(3)  # every byte, each way: far past the deadline
        started = time.monotonic()
        slow = burst(server.base_url, path, headers, 20)
        slowest = time.monotonic() - started
        proxy.restore()
        # A cancelled connection is closed politely first, for up to 2 s (SQLAlchemy's
        # bound), and holds its pool slot until then.
        time.sleep(2.5)
        # Both pooled connections held at once: a leaked one would leave the second
        # request without a connection past the pool timeout, a 503.
        held = burst(server.base_url, "/test/hold-connection?seconds=1", {}, 2)
        after = burst(server.base_url, path, headers, 40)

    report(
        f"database slowed by 3 s a byte, 1 s deadline: 20 concurrent reads answered "
        f"{sorted(set(slow))} within {slowest:.2f} s; afterwards both pooled connections "
        f"held at once {held}, then 40 reads {after.count(200)} x 200"
    )
    assert slow == [503] * 20
    assert slowest < 1 + 1.5  # the deadline, the watcher's tick, the answer
    assert held == [200, 200]
    assert after == [200] * 40


def test_pooled_connections_killed_by_the_server_go_unnoticed(
    database_url: str, report: Report
) -> None:
    app_name = f"reliability-{uuid4().hex[:8]}"
    # One worker: which pool a request meets is then known. A read that meets a dead
    # connection is retried unseen, and its failure makes the pool replace every
    # connection older than it; a write that met one first would be a 503 (never
    # retried: see tests/test_database_outage.py).
    env = server_env(database_url, APP_NAME=app_name, WEB_CONCURRENCY="1")
    with GunicornServer(env) as server:
        path, headers = an_account_to_read(server.base_url)
        assert burst(server.base_url, path, headers, 20) == [200] * 20  # fills the pool
        killed = asyncio.run(
            fetch_column(
                database_url,
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = :name",
                name=app_name,
            )
        )
        reads = burst(server.base_url, path, headers, 20)

        async def create() -> list[int]:
            async with httpx.AsyncClient(base_url=server.base_url) as client:
                accounts = [
                    client.post(USERS, json={"email": unique_email(), "password": PASSWORD})
                    for _ in range(10)
                ]
                return [response.status_code for response in await asyncio.gather(*accounts)]

        writes = asyncio.run(create())

    report(
        f"pg_terminate_backend on {killed[0]} idle pooled connections: the next 20 reads "
        f"{reads.count(200)} x 200, then 10 writes {writes.count(201)} x 201"
    )
    assert killed[0] >= 2
    assert reads == [200] * 20
    assert writes == [201] * 10


def test_an_exhausted_pool_refuses_with_503_after_the_pool_timeout(
    database_url: str, report: Report
) -> None:
    env = server_env(database_url, WEB_CONCURRENCY="1", DB_POOL_SIZE="1", DB_POOL_TIMEOUT="0.5")
    with GunicornServer(env, app=TEST_APP) as server:
        path, headers = an_account_to_read(server.base_url)

        async def starve() -> tuple[int, list[tuple[int, float]]]:
            async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as client:
                holder = asyncio.create_task(client.get("/test/hold-connection?seconds=3"))
                await asyncio.sleep(0.3)

                async def timed() -> tuple[int, float]:
                    started = time.monotonic()
                    status = (await client.get(path)).status_code
                    return status, time.monotonic() - started

                refused = await asyncio.gather(*(timed() for _ in range(5)))
                return (await holder).status_code, refused

        held, refused = asyncio.run(starve())

    report(
        f"pool of 1 held for 3 s, 0.5 s pool timeout: 5 reads answered "
        f"{sorted({s for s, _ in refused})} in at most {max(t for _, t in refused):.2f} s; "
        f"the holder {held}"
    )
    assert held == 200
    assert [status for status, _ in refused] == [503] * 5
    assert all(seconds < 0.5 + 0.5 for _, seconds in refused)


def test_the_service_starts_before_its_database_and_serves_once_it_arrives(
    database_url: str, report: Report
) -> None:
    with database_behind_proxy(database_url) as (proxy, proxied):
        proxy.reset()
        with GunicornServer(server_env(proxied, READY_CACHE_SECONDS="0.2")) as server:
            health = httpx.get(f"{server.base_url}/health").status_code
            ready = httpx.get(f"{server.base_url}/ready").status_code
            proxy.restore()
            became_ready = wait_until_ready(server.base_url)
            path, headers = an_account_to_read(server.base_url)
            read = httpx.get(f"{server.base_url}{path}", headers=headers).status_code

    report(
        f"started with no database: /health {health}, /ready {ready}; database arrives: "
        f"/ready 200 after {became_ready:.2f} s, a read {read}, no restart"
    )
    assert (health, ready, read) == (200, 503, 200)
