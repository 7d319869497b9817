"""The lock that makes concurrent migration runs take turns.

A session-level PostgreSQL advisory lock, held from before the first migration to
after the last, even across migrations that commit on their own (``CREATE INDEX
CONCURRENTLY`` in an autocommit block). If the runner dies, the database releases
the lock with its session.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import Connection

# Arbitrary but fixed: every migration runner of this service must use the same key.
MIGRATION_LOCK_KEY = 4_242_001


@contextmanager
def migration_lock(connection: Connection) -> Iterator[None]:
    """Block until no other migration runner holds the lock; hold it for the block."""
    connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    connection.commit()
    try:
        yield
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
        connection.commit()
