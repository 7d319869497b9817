"""Idempotent writes: POST /api/v1/items retried with one Idempotency-Key creates one item.

Against the real PostgreSQL; the concurrency and crash cases against real gunicorn
workers. Expiry is driven by the database's own clock: the stored key is made older.
"""

import asyncio
import functools
import os
import signal
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI

from app.items.router import create_item
from app.items.schemas import ItemRead
from tests.apps import create_test_app
from tests.support.accounts import auth_headers
from tests.support.database import execute, fetch_column
from tests.support.gunicorn import GunicornServer, production_env
from tests.support.problems import assert_problem
from tests.support.settings import FAST_PASSWORD_HASHING_ENV

ITEMS = "/api/v1/items"
CRASHING_APP = "tests.test_idempotency:create_crashing_app()"


def create_crashing_app() -> FastAPI:
    """The test app and a route that creates an item, then kills its worker unanswered.

    The route is the real create endpoint (its signature too, so FastAPI injects the
    same dependencies), followed by a SIGKILL unless the answer was a replay.
    """
    app = create_test_app()

    @app.post("/test/items-then-crash", status_code=201)
    @functools.wraps(create_item)
    async def create_item_then_crash(**arguments: Any) -> ItemRead:
        item = await create_item(**arguments)
        if "Idempotent-Replayed" not in arguments["response"].headers:
            os.kill(os.getpid(), signal.SIGKILL)
        return item

    return app


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


async def items_titled(database_url: str, title: str) -> list[int]:
    return await fetch_column(database_url, "SELECT id FROM items WHERE title = :t", t=title)


@pytest.mark.anyio
async def test_a_repeat_replays_the_first_response_and_writes_nothing(
    client: httpx.AsyncClient, database_url: str
) -> None:
    headers = keyed(await auth_headers(client), f"key-{uuid4()}")
    title = f"once {uuid4()}"
    first = await client.post(ITEMS, json={"title": title}, headers=headers)
    again = await client.post(ITEMS, json={"title": title}, headers=headers)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert await items_titled(database_url, title) == [first.json()["id"]]


@pytest.mark.anyio
async def test_the_same_key_with_another_body_is_422(client: httpx.AsyncClient) -> None:
    headers = keyed(await auth_headers(client), "reused-key")
    assert (await client.post(ITEMS, json={"title": "a"}, headers=headers)).status_code == 201
    body = assert_problem(await client.post(ITEMS, json={"title": "b"}, headers=headers), 422)
    assert "different request" in body["detail"]


@pytest.mark.anyio
async def test_keys_belong_to_their_user(client: httpx.AsyncClient) -> None:
    key = f"shared-{uuid4()}"
    mine = await client.post(
        ITEMS, json={"title": "t"}, headers=keyed(await auth_headers(client), key)
    )
    theirs = await client.post(
        ITEMS, json={"title": "t"}, headers=keyed(await auth_headers(client), key)
    )
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["id"] != theirs.json()["id"]
    assert "Idempotent-Replayed" not in theirs.headers


@pytest.mark.anyio
@pytest.mark.parametrize("key", ["", "k" * 256, "caf\u00e9", "tab\there"])
async def test_a_malformed_key_is_422_and_not_echoed(client: httpx.AsyncClient, key: str) -> None:
    headers = await auth_headers(client)
    request = client.build_request("POST", ITEMS, json={"title": "t"}, headers=headers)
    request.headers["Idempotency-Key"] = key.encode("utf-8").decode("latin-1")
    response = await client.send(request)
    assert_problem(response, 422)
    if key:
        assert key not in response.text


@pytest.mark.anyio
async def test_an_expired_key_is_pruned_and_the_request_runs_again(
    client: httpx.AsyncClient, database_url: str
) -> None:
    key = f"expiring-{uuid4()}"
    headers = keyed(await auth_headers(client), key)
    first = await client.post(ITEMS, json={"title": "t"}, headers=headers)
    # 25 hours ago, by the database's clock (IDEMPOTENCY_TTL_HOURS is 24).
    await execute(
        database_url,
        "UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = :k",
        k=key,
    )
    again = await client.post(ITEMS, json={"title": "t"}, headers=headers)

    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again.headers
    assert again.json()["id"] != first.json()["id"]
    assert await fetch_column(
        database_url, "SELECT count(*) FROM idempotency_keys WHERE key = :k", k=key
    ) == [1]


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[GunicornServer]:
    env = production_env(database_url, WEB_CONCURRENCY="2", **FAST_PASSWORD_HASHING_ENV)
    with GunicornServer(env, app=CRASHING_APP) as running:
        yield running


def test_concurrent_duplicates_on_two_workers_write_exactly_one_item(
    server: GunicornServer, database_url: str
) -> None:
    title = f"raced {uuid4()}"

    async def race() -> list[httpx.Response]:
        limits = httpx.Limits(max_keepalive_connections=0)  # spread over both workers
        async with httpx.AsyncClient(base_url=server.base_url, limits=limits) as client:
            headers = keyed(await auth_headers(client), f"race-{uuid4()}")
            return await asyncio.gather(
                *(client.post(ITEMS, json={"title": title}, headers=headers) for _ in range(10))
            )

    responses = asyncio.run(race())
    ids = asyncio.run(items_titled(database_url, title))

    assert len(ids) == 1
    for response in responses:
        assert response.status_code in (201, 409), response.text
        if response.status_code == 201:
            assert response.json()["id"] == ids[0]
    assert (
        sum(r.status_code == 201 and "Idempotent-Replayed" not in r.headers for r in responses) == 1
    )


def test_a_crash_after_the_write_leaves_its_result_for_the_retry(
    server: GunicornServer, database_url: str
) -> None:
    title = f"crashed {uuid4()}"

    async def crash_then_retry() -> tuple[type[Exception] | None, httpx.Response]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
            headers = keyed(await auth_headers(client), f"crash-{uuid4()}")
            crashed: type[Exception] | None = None
            try:
                await client.post("/test/items-then-crash", json={"title": title}, headers=headers)
            except httpx.TransportError as exc:
                crashed = type(exc)
            for _ in range(50):  # gunicorn replaces the worker
                try:
                    retry = await client.post(
                        "/test/items-then-crash", json={"title": title}, headers=headers
                    )
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
                else:
                    return crashed, retry
            raise AssertionError("no answer after the crash")

    crashed, retry = asyncio.run(crash_then_retry())
    ids = asyncio.run(items_titled(database_url, title))

    assert crashed is not None  # the first request got no answer at all
    assert retry.status_code == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert ids == [retry.json()["id"]]
