"""Shared fixtures: a throwaway PostgreSQL database per run, settings, and app clients.

Every run creates its own database on the server named by ``TEST_DATABASE_URL``
(default: the local server), migrates it with the real ``alembic upgrade head`` and
drops it at the end. No PostgreSQL reachable is a failure, never a skip.
"""

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.clock import Clock, utc_now
from app.core.config import Settings, normalise_database_url

# The suite must not be steered by the developer's shell: an exported ENVIRONMENT,
# SENTRY_DSN or MAX_REQUEST_BODY_BYTES would change what the app does. This runs
# before anything imports app.main, which reads the environment to build ``app``.
_SETTINGS_VARIABLES = {name.upper() for name in Settings.model_fields}
for _variable in [key for key in os.environ if key.upper() in _SETTINGS_VARIABLES]:
    del os.environ[_variable]

from app.db.admin import (  # noqa: E402
    create_database_if_missing,
    drop_database,
    maintenance_engine,
)
from tests.apps import create_test_app  # noqa: E402
from tests.support.paths import BIN, ROOT  # noqa: E402
from tests.support.tcp_proxy import TcpProxy  # noqa: E402

ALEMBIC = BIN / "alembic"
DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SERVER_URL = normalise_database_url(os.environ.get("TEST_DATABASE_URL") or DEFAULT_SERVER_URL)


def _server_reachable() -> str | None:
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
    error = _server_reachable()
    if error is not None:
        where = make_url(SERVER_URL).render_as_string(hide_password=True)
        pytest.exit(
            f"No PostgreSQL at {where} ({error}): start one with `docker compose -f compose.yaml "
            "-f docker/compose.db-port.yaml up -d db` and set TEST_DATABASE_URL="
            "postgresql://app:app-local-only@127.0.0.1:15432/postgres (see README)",
            returncode=2,
        )


@contextmanager
def database_behind_proxy(database_url: str) -> Iterator[tuple[TcpProxy, str]]:
    """A TCP proxy in front of the test server, and ``database_url`` rewritten to use it."""
    url = make_url(database_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port)
        yield proxy, proxied.render_as_string(hide_password=False)


def database_url_for(name: str) -> str:
    return make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)


def alembic_command(database_url: str, *args: str) -> dict[str, Any]:
    """Arguments for ``subprocess`` that run the real ``alembic``, as the migration job does."""
    env = {**os.environ, "DATABASE_URL": database_url, "ENVIRONMENT": "test"}
    return {"args": [str(ALEMBIC), *args], "cwd": ROOT, "env": env}


def alembic(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        **alembic_command(database_url, *args),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
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
def anyio_backend() -> str:
    return "asyncio"


# Argon2 at its cheapest: the suite hashes hundreds of passwords. Production cost is
# exercised where it matters (the hash-upgrade test raises it).
FAST_PASSWORD_HASHING = {
    "password_hash_time_cost": 1,
    "password_hash_memory_kib": 8192,
    "password_hash_parallelism": 1,
}
# The same, as environment variables for a server process.
FAST_PASSWORD_HASHING_ENV = {
    name.upper(): str(value) for name, value in FAST_PASSWORD_HASHING.items()
}


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        **FAST_PASSWORD_HASHING,
    }
    return Settings(_env_file=None, **(values | overrides))


class FrozenClock:
    """A clock that moves only when the test says so."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


async def fetch_column(database_url: str, query: str, **parameters: Any) -> list[Any]:
    """The first column of a query's rows, read on a connection of its own."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            return list(await connection.scalars(text(query), parameters))
    finally:
        await engine.dispose()


async def execute(database_url: str, statement: str, **parameters: Any) -> None:
    """Run one statement and commit it, on a connection of its own."""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(statement), parameters)
    finally:
        await engine.dispose()


@asynccontextmanager
async def app_client(
    settings: Settings, clock: Clock = utc_now
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the in-process app (with the test routes), its lifespan running.

    With a ``FrozenClock``, the app reads time from it (token issue and expiry) instead
    of the system clock.
    """
    app = create_test_app(settings, clock=clock)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(settings) as client:
        yield client
