"""A write transaction commits before the response and rolls back on error; reads never write.

``commit_probe`` has a unique constraint checked only at commit (DEFERRABLE INITIALLY
DEFERRED), so a conflicting write succeeds inside the handler and fails at commit:
the client must see that failure, never a 201 for rows that were not stored.
"""

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import column, insert, table

from app.db.database import Database
from app.db.engine import create_engine
from tests.support.clients import app_client
from tests.support.database import fetch_column
from tests.support.settings import make_settings

pytestmark = pytest.mark.anyio


@pytest.fixture
async def probe_client(probe_database: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(make_settings(probe_database)) as client:
        yield client


async def stored_values(url: str) -> list[int]:
    return await fetch_column(url, "SELECT value FROM commit_probe ORDER BY 1")


async def test_successful_write_is_committed_when_the_response_arrives(
    probe_client: httpx.AsyncClient, probe_database: str
) -> None:
    response = await probe_client.post("/test/write", json=[1, 2])
    assert response.status_code == 201
    assert await stored_values(probe_database) == [1, 2]


async def test_failed_commit_is_an_error_response_and_nothing_is_stored(
    probe_client: httpx.AsyncClient, probe_database: str
) -> None:
    response = await probe_client.post("/test/write", json=[10, 10])
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert 10 not in await stored_values(probe_database)


async def test_a_write_handed_to_a_read_method_is_refused_before_it_runs(
    probe_database: str,
) -> None:
    """Reads may run twice and outside a transaction: a write there would be a bug."""
    engine = create_engine(make_settings(probe_database))
    write = insert(table("commit_probe", column("value"))).values(value=7_777)
    try:
        with pytest.raises(TypeError, match="transaction"):
            await Database(engine).fetch_all(write)
    finally:
        await engine.dispose()
    assert 7_777 not in await stored_values(probe_database)
