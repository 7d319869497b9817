"""How requests use the database: a read is one round trip, a write is one transaction.

Repositories pass SQLAlchemy Core statements, built once at import with ``bindparam``
placeholders (so each compiles once per process), and get rows back.

- ``fetch_one`` / ``fetch_all`` run a read in autocommit: no ``BEGIN``/``COMMIT``
  around it, and no ping on checkout. A pooled connection that died while the
  database was away (a restart, a failover) fails its first statement at once; the
  read is then retried once, on a fresh connection, so the client never sees it.
  SQLAlchemy also marks every connection opened before that failure as stale, so the
  pool replaces them on their next checkout instead of failing more requests. Since a
  read may run twice, and outside any transaction, it must be a plain ``SELECT``: no
  ``FOR UPDATE``, no ``nextval()``, no writes (an ``insert``/``update``/``delete`` is
  refused outright).
- ``transaction()`` runs writes in one transaction, committed when the block ends,
  which is before the use case returns and so before any response is sent. Writes are
  never retried: after a lost connection nobody can tell whether the commit happened.
  Let a database error leave the block: PostgreSQL aborts the transaction at the
  first one and answers the final ``COMMIT`` with a rollback, so a caught error would
  turn into a success response for a write that was not stored. For an error you
  expect, open ``connection.begin_nested()`` (a savepoint) around the statement.

A read runs SQLAlchemy's synchronous ``Connection`` inside a single greenlet, the same
bridge ``AsyncConnection`` uses, but entered once per read instead of once for the
checkout, once for the statement and once (in a task of its own) for the checkin. A
cancelled read invalidates its connection, as SQLAlchemy does for any interrupted
statement, so a half-read connection never goes back to the pool.
"""

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy import Engine, Row, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Executable
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.util import greenlet_spawn

from app.core.resources import Resource

Parameters = Mapping[str, Any]
_SELECT_ONE = text("SELECT 1")


class Database:
    def __init__(self, engine: AsyncEngine, *, transaction_pooler: bool = False) -> None:
        """``transaction_pooler``: behind PgBouncer in transaction mode (``DB_PGBOUNCER``).

        A read's statement is prepared and executed in two exchanges; only a transaction
        keeps both on one server connection there, so reads run in one (see
        ``app.db.engine``). Elsewhere they run in autocommit, in one round trip.
        """
        self._engine = engine
        # Shares the engine's pool; only how its connections are used differs.
        self._reads: Engine = (
            engine.sync_engine
            if transaction_pooler
            else engine.sync_engine.execution_options(isolation_level="AUTOCOMMIT")
        )

    async def fetch_one(
        self, statement: Executable, parameters: Parameters | None = None
    ) -> Row[Any] | None:
        """The first row of a query that returns one (by a unique key) or none."""
        rows = await self.fetch_all(statement, parameters)
        return rows[0] if rows else None

    async def fetch_all(
        self, statement: Executable, parameters: Parameters | None = None
    ) -> Sequence[Row[Any]]:
        if isinstance(statement, UpdateBase):
            raise TypeError("writes go through transaction(): a read may be run twice")
        try:
            return await greenlet_spawn(self._read, statement, parameters)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        return await greenlet_spawn(self._read, statement, parameters)

    def _read(self, statement: Executable, parameters: Parameters | None) -> Sequence[Row[Any]]:
        with self._reads.connect() as connection:
            return connection.execute(statement, parameters).all()

    async def ping(self) -> None:
        """One ``SELECT 1``: the readiness check. Raises if the database does not answer."""
        await self.fetch_one(_SELECT_ONE)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction: committed if the block ends, rolled back if it raises."""
        async with self._engine.begin() as connection:
            yield connection


DATABASE = Resource[Database]("database")
DatabaseDep = Annotated[Database, Depends(DATABASE)]
