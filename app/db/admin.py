"""Database administration for local development, tests and the benchmark.

Production databases are provisioned by their platform; this exists so ``make run``
works on a fresh PostgreSQL and the tests and ``make bench`` can make (and drop) a
throwaway database of their own.
"""

import asyncio

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.core.config import get_settings_or_exit


def maintenance_engine(url: str) -> AsyncEngine:
    """An autocommit engine on the server's ``postgres`` database (CREATE DATABASE needs both)."""
    server = make_url(url).set(database="postgres")
    return create_async_engine(server, isolation_level="AUTOCOMMIT", pool_size=1, max_overflow=0)


async def create_database_if_missing(url: str) -> bool:
    """Create the database named in ``url``; return whether it had to be created."""
    name = make_url(url).database
    engine = maintenance_engine(url)
    try:
        async with engine.connect() as connection:
            exists = await connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            )
            if exists:
                return False
            quoted = engine.dialect.identifier_preparer.quote(str(name))
            await connection.execute(text(f"CREATE DATABASE {quoted}"))
            return True
    finally:
        await engine.dispose()


async def drop_database(url: str) -> None:
    """Drop the database named in ``url``, even with sessions still connected to it."""
    engine = maintenance_engine(url)
    try:
        async with engine.connect() as connection:
            name = engine.dialect.identifier_preparer.quote(str(make_url(url).database))
            await connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    finally:
        await engine.dispose()


def main() -> None:
    url = get_settings_or_exit().sqlalchemy_url
    created = asyncio.run(create_database_if_missing(url))
    database = make_url(url).database
    print(f"database {database!r} {'created' if created else 'already exists'}")  # noqa: T201


if __name__ == "__main__":
    main()
