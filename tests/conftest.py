"""Fixtures: a throwaway PostgreSQL database per run, settings, and an app client.

Every run creates its own database on the server named by ``TEST_DATABASE_URL``
(default: the local server), migrates it with the real ``alembic upgrade head`` and
drops it at the end. No PostgreSQL reachable is a failure, never a skip. Helpers
that tests import live in ``tests/support``.
"""

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from uuid import uuid4

import httpx
import pytest
import redis
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.core.config import Settings
from app.db.admin import create_database_if_missing, drop_database, maintenance_engine
from tests.support.clients import app_client
from tests.support.database import SERVER_URL, alembic, database_url_for, execute
from tests.support.settings import TEST_REDIS_URL, make_settings


def pytest_configure(config: pytest.Config) -> None:  # noqa: ARG001  (hook signature)
    """The suite must not be steered by the developer's shell.

    An exported ENVIRONMENT, SENTRY_DSN or MAX_REQUEST_BODY_BYTES would change what the
    app does, in process and in every server a test starts with ``os.environ``.
    """
    settings_variables = {name.upper() for name in Settings.model_fields}
    for variable in [key for key in os.environ if key.upper() in settings_variables]:
        del os.environ[variable]


def _server_unreachable() -> str | None:
    async def probe() -> None:
        engine = maintenance_engine(SERVER_URL)
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        finally:
            await engine.dispose()

    try:
        asyncio.run(asyncio.wait_for(probe(), timeout=5))
    except Exception as exc:
        return type(exc).__name__
    return None


def pytest_sessionstart(session: pytest.Session) -> None:  # noqa: ARG001  (hook signature)
    redis.Redis.from_url(TEST_REDIS_URL).flushdb()  # counts left by an earlier run
    error = _server_unreachable()
    if error is not None:
        where = make_url(SERVER_URL).render_as_string(hide_password=True)
        pytest.exit(
            f"No PostgreSQL at {where} ({error}): start one with `docker compose -f compose.yaml "
            "-f docker/compose.db-port.yaml up -d db` and set TEST_DATABASE_URL="
            "postgresql://app:app-local-only@127.0.0.1:15432/postgres (see README)",
            returncode=2,
        )


@pytest.fixture(scope="session")
def fresh_database() -> Iterator[Callable[[], str]]:
    """A new, empty database; dropped when the test session ends."""
    created: list[str] = []

    def make() -> str:
        url = database_url_for(f"test_{uuid4().hex[:16]}")
        asyncio.run(create_database_if_missing(url))
        created.append(url)
        return url

    yield make
    for url in created:
        asyncio.run(drop_database(url))


@pytest.fixture(scope="session")
def database_url(fresh_database: Callable[[], str]) -> str:
    """The run's database, migrated to head."""
    url = fresh_database()
    result = alembic(url, "upgrade", "head")
    assert result.returncode == 0, result.stdout + result.stderr
    return url


@pytest.fixture(scope="session")
def probe_database(fresh_database: Callable[[], str]) -> str:
    """A migrated database with ``commit_probe``: a unique constraint checked at commit."""
    url = fresh_database()
    assert alembic(url, "upgrade", "head").returncode == 0

    asyncio.run(
        execute(
            url,
            "CREATE TABLE commit_probe (value integer, CONSTRAINT uq_commit_probe_value"
            " UNIQUE (value) DEFERRABLE INITIALLY DEFERRED)",
        )
    )
    return url


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(settings) as client:
        yield client
