"""The test PostgreSQL server: its URL, throwaway databases, alembic, one-off queries.

``TEST_DATABASE_URL`` names the server (default: the local one); every run creates
databases of its own on it and drops them at the end.
"""

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.config import normalise_database_url
from tests.support.paths import BIN, ROOT
from tests.support.tcp_proxy import TcpProxy

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SERVER_URL = normalise_database_url(os.environ.get("TEST_DATABASE_URL") or DEFAULT_SERVER_URL)


def database_url_for(name: str) -> str:
    return make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)


@contextmanager
def database_behind_proxy(database_url: str) -> Iterator[tuple[TcpProxy, str]]:
    """A TCP proxy in front of the test server, and ``database_url`` rewritten to use it."""
    url = make_url(database_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port)
        yield proxy, proxied.render_as_string(hide_password=False)


def alembic_command(database_url: str, *args: str) -> dict[str, Any]:
    """Arguments for ``subprocess`` that run the real ``alembic``, as the migration job does."""
    env = {**os.environ, "DATABASE_URL": database_url, "ENVIRONMENT": "test"}
    return {"args": [str(BIN / "alembic"), *args], "cwd": ROOT, "env": env}


def alembic(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        **alembic_command(database_url, *args),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


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
