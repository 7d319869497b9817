"""Idempotent writes: a ``POST`` retried with the same ``Idempotency-Key`` happens once.

Following the IETF HTTPAPI idempotency-key draft. A client that timed out cannot tell
whether its ``POST`` happened; sending it again with the same key is safe. The write
and the record of its outcome (status, body, and a fingerprint of the request) commit
in one transaction, so a crash never leaves one without the other. A repeat:

- with the same request, once the first has committed, gets the stored outcome again
  (``Idempotent-Replayed: true``) and writes nothing;
- with another body (or for another operation) under the same key is a 422;
- while the first is still running is a 409 (a transaction advisory lock, tried, never
  waited on).

Keys are scoped to the caller and kept ``IDEMPOTENCY_TTL_HOURS``; each keyed request
first deletes up to a hundred expired keys (anyone's, oldest first, by an index on
``created_at``), so no separate job is needed. A route opts in by taking
``IdempotencyKeyHeader``, running its write in ``KeyedWrites.transaction`` and
answering a replay with the stored status (docs/adding-a-resource.md shows it).
"""

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import Depends, Header
from sqlalchemy import bindparam, delete, func, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.errors import ProblemError
from app.core.resources import Resource
from app.db.database import Database
from app.idempotency.models import KEY_MAX_LENGTH, IdempotencyKey

_keys = IdempotencyKey.__table__
_mine = (_keys.c.owner_id == bindparam("owner"), _keys.c.key == bindparam("key"))
_CLAIM = select(func.pg_try_advisory_xact_lock(func.hashtextextended(bindparam("scope"), 0)))
# Up to a hundred expired keys of anyone, oldest first, skipping rows another
# transaction holds: each keyed request cleans a little, and never waits to.
_EXPIRED = (
    select(_keys.c.owner_id, _keys.c.key)
    # make_interval(years, months, weeks, days, hours)
    .where(_keys.c.created_at < func.now() - func.make_interval(0, 0, 0, 0, bindparam("ttl_hours")))
    .order_by(_keys.c.created_at)
    .limit(100)
    .with_for_update(skip_locked=True)
)
_PRUNE = delete(IdempotencyKey).where(tuple_(_keys.c.owner_id, _keys.c.key).in_(_EXPIRED))
_FIND = select(_keys.c.fingerprint, _keys.c.status, _keys.c.body).where(*_mine)
_RECORD = insert(IdempotencyKey)

# 1 to 255 printable ASCII characters, as the draft's examples and most clients use.
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=KEY_MAX_LENGTH,
        pattern=r"^[\x20-\x7e]+$",
        description="Makes a retry of this request safe: it happens once (IETF draft).",
    ),
]


class IdempotencyKeyReusedError(ProblemError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    detail = "This Idempotency-Key was used for a different request."


class IdempotencyKeyInUseError(ProblemError):
    status = HTTPStatus.CONFLICT
    detail = "A request with this Idempotency-Key is still being processed. Retry later."


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: dict[str, Any]


@dataclass(slots=True)
class KeyedWrite:
    """The transaction's connection, and what an earlier run of the request returned."""

    connection: AsyncConnection
    replay: StoredResponse | None
    _record: dict[str, Any] | None

    async def record(self, status: int, body: dict[str, Any]) -> None:
        """Stores the outcome, committed with the write (a no-op without a key)."""
        if self._record is not None:
            await self.connection.execute(_RECORD, {**self._record, "status": status, "body": body})


class KeyedWrites:
    def __init__(self, ttl_hours: int) -> None:
        self._ttl_hours = ttl_hours

    @asynccontextmanager
    async def transaction(
        self, db: Database, *, owner_id: int, key: str | None, operation: str, body: str
    ) -> AsyncIterator[KeyedWrite]:
        """``db.transaction()``, claiming ``key`` first when there is one.

        ``operation`` names what is done (``POST /api/v1/orders``) and ``body`` is the
        request as JSON: together they are the request a repeat must match.
        """
        async with db.transaction() as connection:
            if key is None:
                yield KeyedWrite(connection, None, None)
                return
            fingerprint = hashlib.sha256(f"{operation}\n{body}".encode()).hexdigest()
            mine = {"owner": owner_id, "key": key}
            claimed = await connection.scalar(_CLAIM, {"scope": f"{owner_id}:{key}"})
            if not claimed:
                raise IdempotencyKeyInUseError
            await connection.execute(_PRUNE, {"ttl_hours": self._ttl_hours})
            earlier = (await connection.execute(_FIND, mine)).one_or_none()
            if earlier is not None:
                if earlier.fingerprint != fingerprint:
                    raise IdempotencyKeyReusedError
                yield KeyedWrite(connection, StoredResponse(earlier.status, earlier.body), None)
                return
            record = {"owner_id": owner_id, "key": key, "fingerprint": fingerprint}
            yield KeyedWrite(connection, None, record)


KEYED_WRITES = Resource[KeyedWrites]("keyed_writes")
KeyedWritesDep = Annotated[KeyedWrites, Depends(KEYED_WRITES)]
