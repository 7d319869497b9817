"""All SQL for the ``users`` table: statements built once, run through ``Database``."""

from typing import Any

from sqlalchemy import Row, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.database import Database
from app.users.models import User

_users = User.__table__

_BY_ID = select(_users).where(_users.c.id == bindparam("user_id"))
_BY_EMAIL = select(_users).where(func.lower(_users.c.email) == func.lower(bindparam("email")))
_ADD = insert(User).returning(*_users.c)
_SET_PASSWORD_HASH = (
    update(User).where(_users.c.id == bindparam("user_id")).values(password_hash=bindparam("hash"))
)


async def get_by_id(db: Database, user_id: int) -> Row[Any] | None:
    return await db.fetch_one(_BY_ID, {"user_id": user_id})


async def get_by_email(db: Database, email: str) -> Row[Any] | None:
    return await db.fetch_one(_BY_EMAIL, {"email": email})


async def add(connection: AsyncConnection, *, email: str, password_hash: str) -> Row[Any]:
    """Insert and return the row; a taken email fails here with IntegrityError."""
    result = await connection.execute(_ADD, {"email": email, "password_hash": password_hash})
    return result.one()


async def set_password_hash(
    connection: AsyncConnection, *, user_id: int, password_hash: str
) -> None:
    await connection.execute(_SET_PASSWORD_HASH, {"user_id": user_id, "hash": password_hash})
