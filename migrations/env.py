"""Alembic environment: online migrations over asyncpg, one runner at a time.

An advisory lock (``app.db.migration_lock``) is held around the migrations, so two
migration jobs started together (a re-run Job, two deploys
racing) run one after the other: the second finds the schema at head and does nothing.
"""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import app.models  # noqa: F401  (registers every table on Base.metadata)
from app.core.config import get_settings_or_exit
from app.core.logging import configure_logging
from app.db.base import Base
from app.db.migration_lock import migration_lock

target_metadata = Base.metadata


def _run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
    )
    with migration_lock(connection), context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    settings = get_settings_or_exit()
    configure_logging(settings)
    if settings.db_pgbouncer and settings.migrations_database_url is None:
        # The advisory lock is held by a session, which a transaction pooler does not keep.
        raise SystemExit(
            "DB_PGBOUNCER is set: set MIGRATIONS_DATABASE_URL to PostgreSQL itself, not PgBouncer."
        )
    # No statement timeout here: a migration may legitimately rewrite a large table.
    engine = create_async_engine(
        settings.migrations_sqlalchemy_url, connect_args={"timeout": settings.db_connect_timeout}
    )
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Offline (--sql) migrations are not supported; run against a database.")
asyncio.run(_run_online())
