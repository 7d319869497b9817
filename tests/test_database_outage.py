"""A request that cannot reach the database gets 503 with Retry-After, never a 500.

Three ways the database goes missing, each real: nothing listens on its port
(connection refused), the network swallows every packet (connect times out), and
every pooled connection is busy past DB_POOL_TIMEOUT.
"""

import asyncio

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import app_client, database_behind_proxy, make_settings
from tests.support.gunicorn import free_port

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
