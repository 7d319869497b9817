"""The request deadline: what a request still running at REQUEST_TIMEOUT_SECONDS gets.

Against the real app and PostgreSQL: a slow handler is a 504, a slow database a 503
with Retry-After (its statement cancelled on the server, its connection never
leaked, its transaction never committed), a body that arrives too slowly a 408, and
a streaming response that keeps sending is never cut (one that stalls is: see
``tests/reliability``, where a real server closes the connection).
"""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable

import httpx
import pytest

from tests.support.clients import app_client
from tests.support.database import fetch_column
from tests.support.problems import assert_problem
from tests.support.settings import make_settings

pytestmark = pytest.mark.anyio

TIMEOUT = 0.5


@pytest.fixture
async def client(probe_database: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        probe_database, request_timeout_seconds=TIMEOUT, db_pool_size=2, db_pool_timeout=0.3
    )
    async with app_client(settings) as client:
        yield client


async def timed(request: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await request
    return response, time.monotonic() - started


async def test_a_slow_handler_is_a_504_at_the_deadline(client: httpx.AsyncClient) -> None:
    response, elapsed = await timed(client.get("/test/slow", params={"seconds": 5}))

    body = assert_problem(response, 504)
    assert body["detail"] == "The request took too long."
    assert TIMEOUT <= elapsed < TIMEOUT + 0.5


async def test_a_slow_read_is_a_503_its_statement_cancelled_and_the_pool_whole(
    client: httpx.AsyncClient, probe_database: str
) -> None:
    slow = [client.get("/test/hold-connection", params={"seconds": 5}) for _ in range(4)]
    answers = await asyncio.gather(*(timed(request) for request in slow))

    for response, elapsed in answers:
        assert_problem(response, 503)
        assert response.headers["Retry-After"] == "5"
        assert elapsed < TIMEOUT + 0.5
    # The server stopped the statements too: nothing of ours still sleeps there.
    await asyncio.sleep(0.3)
    running = await fetch_column(
        probe_database,
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'"
        " AND state = 'active' AND pid <> pg_backend_pid()",
    )
    assert running == [0]
    # No connection leaked: both pooled connections can be held at once (a request
    # finding none free within the 0.3 s pool timeout would be a 503).
    both = [client.get("/test/hold-connection", params={"seconds": 0.4}) for _ in range(2)]
    assert [r.status_code for r in await asyncio.gather(*both)] == [200] * 2


async def test_a_write_cut_by_the_deadline_is_a_503_and_not_committed(
    client: httpx.AsyncClient, probe_database: str
) -> None:
    response = await client.post("/test/slow-write", params={"value": 31_337, "seconds": 5})

    assert_problem(response, 503)
    stored = await fetch_column(
        probe_database, "SELECT count(*) FROM commit_probe WHERE value = 31337"
    )
    assert stored == [0]


async def test_a_body_that_arrives_too_slowly_is_a_408(client: httpx.AsyncClient) -> None:
    async def drip() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x"
            await asyncio.sleep(0.2)

    response, elapsed = await timed(client.post("/test/echo", content=drip()))

    body = assert_problem(response, 408)
    assert body["detail"] == "The request body arrived too slowly."
    assert elapsed < TIMEOUT + 0.5


async def test_a_stream_that_keeps_sending_outlives_the_deadline(
    client: httpx.AsyncClient,
) -> None:
    # 6 chunks 0.2 s apart: 1 s in all, twice the deadline.
    response = await client.get("/test/stream", params={"chunks": 6, "interval": 0.2})

    assert response.status_code == 200
    assert response.text == "".join(f"chunk {n}\n" for n in range(6))


async def test_fast_requests_are_untouched(client: httpx.AsyncClient) -> None:
    response = await client.get("/test/ok")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
