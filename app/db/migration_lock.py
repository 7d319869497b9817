"""The lock that makes concurrent migration runs take turns.

A transaction-scoped PostgreSQL advisory lock: released by the commit or rollback
that ends the migration, so a crashed runner can never leave it held.
"""

from sqlalchemy import text
from sqlalchemy.engine import Connection

# Arbitrary but fixed: every migration runner of this service must use the same key.
MIGRATION_LOCK_KEY = 4_242_001


def acquire_migration_lock(connection: Connection) -> None:
    """Block until no other migration runner holds the lock (call inside the transaction)."""
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
