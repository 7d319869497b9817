"""Log-in and registration throttling: limits per account and per address, checked
before any password hash, shared by every worker through the real Redis, failing open
when the store is down."""

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import httpx
import pytest

from tests.support.accounts import PASSWORD, TOKEN, USERS, register, unique_email
from tests.support.clients import app_client, metrics_url
from tests.support.gunicorn import GunicornServer, free_port, production_env
from tests.support.problems import assert_problem
from tests.support.settings import FAST_PASSWORD_HASHING_ENV, make_settings
from tests.support.tcp_proxy import TcpProxy

TIGHT = {"login_rate_limit": "3/minute", "login_ip_rate_limit": "1000/minute"}


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    # Production's Argon2 cost, so that a refused attempt visibly costs no hash.
    settings = make_settings(
        database_url,
        password_hash_time_cost=3,
        password_hash_memory_kib=65536,
        password_hash_parallelism=4,
        **TIGHT,
    )
    async with app_client(settings) as client:
        yield client


async def attempt(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post(TOKEN, data={"username": email, "password": password})


@pytest.mark.anyio
async def test_an_account_is_throttled_after_its_failures_without_computing_a_hash(
    client: httpx.AsyncClient,
) -> None:
    email = unique_email()
    await register(client, email)
    failures = []
    for _ in range(3):
        started = time.monotonic()
        assert_problem(await attempt(client, email, "wrong password"), 401)
        failures.append(time.monotonic() - started)

    started = time.monotonic()
    throttled = await attempt(client, email, PASSWORD)  # even the right password
    refused_in = time.monotonic() - started

    assert_problem(throttled, 429)
    assert 0 < int(throttled.headers["Retry-After"]) <= 60
    assert refused_in < min(failures) / 3  # no Argon2 verification behind it
    # Another account from the same address is not affected.
    other = unique_email()
    await register(client, other)
    assert (await attempt(client, other, PASSWORD)).status_code == 200


@pytest.mark.anyio
async def test_guesses_sent_in_parallel_are_counted_too(client: httpx.AsyncClient) -> None:
    email = unique_email()
    await register(client, email)
    guesses = [attempt(client, email, f"guess {n}") for n in range(10)]
    statuses = sorted(response.status_code for response in await asyncio.gather(*guesses))
    assert statuses == [401] * 3 + [429] * 7  # only three ever reach the password check


@pytest.mark.anyio
async def test_a_successful_log_in_clears_the_accounts_failures(client: httpx.AsyncClient) -> None:
    email = unique_email()
    await register(client, email)
    for _ in range(2):
        assert_problem(await attempt(client, email, "wrong password"), 401)
    assert (await attempt(client, email, PASSWORD)).status_code == 200
    for _ in range(3):  # a whole allowance again
        assert_problem(await attempt(client, email, "wrong password"), 401)
    assert_problem(await attempt(client, email, "wrong password"), 429)


@pytest.mark.anyio
async def test_an_address_is_throttled_across_accounts_and_registrations(
    database_url: str,
) -> None:
    limits = {"login_ip_rate_limit": "4/minute", "register_rate_limit": "2/minute"}
    async with app_client(make_settings(database_url, **limits)) as client:
        emails = [unique_email(), unique_email()]
        for email in emails:
            await register(client, email)
        registration = {"email": unique_email(), "password": PASSWORD}
        assert_problem(await client.post(USERS, json=registration), 429)
        statuses = [(await attempt(client, emails[n % 2], PASSWORD)).status_code for n in range(5)]
    assert statuses == [200, 200, 200, 200, 429]


def test_limits_hold_across_two_workers_through_redis(database_url: str) -> None:
    env = production_env(
        database_url,
        WEB_CONCURRENCY="2",
        APP_NAME=f"throttle-{uuid4().hex[:8]}",  # its own keys in the suite's Redis database
        LOGIN_RATE_LIMIT="5/15minutes",
        **FAST_PASSWORD_HASHING_ENV,
    )
    email = unique_email()

    async def run(base_url: str) -> list[httpx.Response]:
        # A new connection per request, so the attempts are spread over both workers.
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=base_url, limits=limits) as client:
            await register(client, email)
            return [await attempt(client, email, "wrong password") for _ in range(7)]

    with GunicornServer(env) as server:
        responses = asyncio.run(run(server.base_url))
        time.sleep(0.1)
        lines = server.output

    assert [r.status_code for r in responses] == [401] * 5 + [429] * 2
    assert '"event":"attempts throttled"' in lines
    assert email not in lines


@pytest.mark.anyio
async def test_a_store_that_stops_answering_costs_one_short_wait_then_none(
    database_url: str,
) -> None:
    with TcpProxy("127.0.0.1", 6379) as proxy:
        settings = make_settings(
            database_url, rate_limit_storage_url=f"redis://127.0.0.1:{proxy.port}/15", **TIGHT
        )
        async with app_client(settings) as client:
            email = unique_email()
            await register(client, email)
            assert (await attempt(client, email, PASSWORD)).status_code == 200  # store reached
            proxy.cut()  # every byte dropped: calls hang rather than fail
            seconds = []
            for _ in range(4):
                started = time.monotonic()
                assert (await attempt(client, email, PASSWORD)).status_code == 200
                seconds.append(time.monotonic() - started)

    assert seconds[0] < 0.5 + 0.5  # one timed-out call, then the store is left alone
    assert max(seconds[1:]) < 0.3


@pytest.mark.anyio
async def test_an_unreachable_store_lets_attempts_through_and_says_so(database_url: str) -> None:
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    settings = make_settings(database_url, rate_limit_storage_url=unreachable, **TIGHT)
    async with app_client(settings) as client:
        email = unique_email()
        await register(client, email)
        statuses = [(await attempt(client, email, "wrong password")).status_code for _ in range(4)]
        right = await attempt(client, email, PASSWORD)
        metrics = (await client.get(metrics_url(settings))).text

    assert statuses == [401] * 4  # no 429: failing open
    assert right.status_code == 200
    errors = _sample(metrics, "rate_limit_store_errors_total")
    assert errors is not None
    assert errors > 0


def _sample(metrics: str, name: str) -> float | None:
    for line in metrics.splitlines():
        if line.startswith(f"{name} "):
            value: Any = line.split()[1]
            return float(value)
    return None
