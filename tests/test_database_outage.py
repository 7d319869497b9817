"""A request that cannot reach the database gets 503 with Retry-After, never a 500.

Four ways the database goes missing, each real: nothing listens on its port
(connection refused), it has no connection slot left, the network swallows every
packet (connect times out), and every pooled connection is busy past DB_POOL_TIMEOUT.
And one way it comes back: the pooled connections died while it was away, which a
read must not notice and a write must report.
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from uuid import uuid4

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.support.accounts import ME, auth_headers
from tests.support.clients import app_client
from tests.support.database import database_behind_proxy, execute, fetch_column
from tests.support.gunicorn import free_port
from tests.support.settings import make_settings

pytestmark = pytest.mark.anyio

REGISTRATION = {"email": "outage@example.com", "password": "long enough password"}


def assert_retry_later(response: httpx.Response) -> None:
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    body = response.json()
    assert body["status"] == 503
    assert body["request_id"]


async def test_connection_refused_is_503(database_url: str) -> None:
    closed_port = free_port()  # bound and released: nothing listens there
    url = make_url(database_url).set(host="127.0.0.1", port=closed_port)
    settings = make_settings(url.render_as_string(hide_password=False))
    async with app_client(settings) as client:
        assert_retry_later(await client.post("/api/v1/users", json=REGISTRATION))


async def test_a_database_out_of_connections_is_503(database_url: str) -> None:
    """PostgreSQL refusing a connection for lack of slots (SQLSTATE 53300) is an outage."""
    role = f"no_slots_{uuid4().hex[:8]}"
    await execute(database_url, f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0")
    try:
        url = make_url(database_url).set(username=role)
        settings = make_settings(url.render_as_string(hide_password=False))
        async with app_client(settings) as client:
            assert_retry_later(await client.post("/api/v1/users", json=REGISTRATION))
    finally:
        await execute(database_url, f"DROP ROLE {role}")


async def test_a_statement_past_the_statement_timeout_is_503(database_url: str) -> None:
    """The database took too long (SQLSTATE 57014): a retry later may find it quicker."""
    settings = make_settings(database_url, db_statement_timeout_ms=100)
    async with app_client(settings) as client:
        assert_retry_later(await client.get("/test/hold-connection", params={"seconds": 1}))


async def test_unanswered_connect_is_503_within_the_connect_timeout(database_url: str) -> None:
    with database_behind_proxy(database_url) as (proxy, url):
        proxy.cut()
        settings = make_settings(url, db_connect_timeout=0.5)
        async with app_client(settings) as client:
            response = await asyncio.wait_for(
                client.post("/api/v1/users", json=REGISTRATION), timeout=5
            )
        assert_retry_later(response)


async def test_exhausted_pool_is_503_after_the_pool_timeout(database_url: str) -> None:
    settings = make_settings(database_url, db_pool_size=1, db_max_overflow=0, db_pool_timeout=0.2)
    async with app_client(settings) as client:
        holder = asyncio.create_task(client.get("/test/hold-connection", params={"seconds": 1}))
        await asyncio.sleep(0.3)  # the only connection is now inside pg_sleep
        waiting = await client.post("/api/v1/users", json=REGISTRATION)
        held = await holder
    assert held.status_code == 200
    assert_retry_later(waiting)


@dataclass
class OneConnection:
    """The in-process app with a pool of one connection, and a way to kill that connection."""

    client: httpx.AsyncClient
    headers: dict[str, str]
    database_url: str
    application_name: str

    async def end_pooled_connection(self) -> None:
        """What a database restart or failover does to a pool: its connection dies under it."""
        terminated = await fetch_column(
            self.database_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = :name",
            name=self.application_name,
        )
        assert terminated == [True]


@pytest.fixture
async def one_connection(probe_database: str) -> AsyncIterator[OneConnection]:
    """On the database with ``commit_probe``, which the test app's ``/test/write`` fills."""
    settings = make_settings(probe_database, app_name=f"pool-{uuid4().hex[:8]}", db_pool_size=1)
    async with app_client(settings) as client:
        headers = await auth_headers(client)
        yield OneConnection(client, headers, probe_database, settings.app_name)


async def test_a_read_on_a_connection_that_died_in_the_pool_is_retried_unseen(
    one_connection: OneConnection,
) -> None:
    """No ping before each use, yet a dead pooled connection costs the reader nothing."""
    client, headers = one_connection.client, one_connection.headers
    account = await client.get(ME, headers=headers)
    assert account.status_code == 200

    await one_connection.end_pooled_connection()
    read = await client.get(ME, headers=headers)
    assert read.status_code == 200
    assert read.json() == account.json()


async def test_a_write_on_a_connection_that_died_in_the_pool_is_not_retried(
    one_connection: OneConnection,
) -> None:
    """After a lost connection nobody knows whether a write happened: the client decides."""
    client, url = one_connection.client, one_connection.database_url
    value = uuid4().int % 2**31
    await one_connection.end_pooled_connection()
    try:
        refused = await client.post("/test/write", json=[value])
        retried = await client.post("/test/write", json=[value])
        written = await fetch_column(
            url, "SELECT count(*) FROM commit_probe WHERE value = :v", v=value
        )
    finally:  # other tests read the whole table
        await execute(url, "DELETE FROM commit_probe WHERE value = :v", v=value)
    assert_retry_later(refused)
    assert retried.status_code == 201
    assert written == [1]
