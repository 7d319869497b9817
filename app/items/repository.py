"""All SQL for the ``items`` table. Every statement is scoped to an owner.

Statements are built once, here, with ``bindparam`` placeholders, so each is compiled
once per process; reads go through ``Database`` (one round trip, no transaction),
writes run on the transaction's connection and return the row with ``RETURNING``.
"""

from typing import Any

from sqlalchemy import Row, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.database import Database
from app.items.models import Item

_items = Item.__table__
# Parameter names differ from the column names: UPDATE reserves those for its SET clause.
_owned = (_items.c.owner_id == bindparam("owner"), _items.c.id == bindparam("item"))

_GET_OWNED = select(_items).where(*_owned)
# Newest first, older than a position: an index range scan however deep the page, no OFFSET.
_PAGE_OWNED = (
    select(_items)
    .where(_items.c.owner_id == bindparam("owner"), _items.c.id < bindparam("before"))
    .order_by(_items.c.id.desc())
    .limit(bindparam("limit"))
)
_ADD = insert(Item).returning(*_items.c)
_DELETE_OWNED = delete(Item).where(*_owned).returning(_items.c.id)


async def get_owned(db: Database, *, owner_id: int, item_id: int) -> Row[Any] | None:
    return await db.fetch_one(_GET_OWNED, {"owner": owner_id, "item": item_id})


async def list_owned(db: Database, *, owner_id: int, before_id: int, limit: int) -> list[Row[Any]]:
    rows = await db.fetch_all(_PAGE_OWNED, {"owner": owner_id, "before": before_id, "limit": limit})
    return list(rows)


async def add(
    connection: AsyncConnection, *, owner_id: int, title: str, description: str | None
) -> Row[Any]:
    values = {"owner_id": owner_id, "title": title, "description": description}
    return (await connection.execute(_ADD, values)).one()


async def update_owned(
    connection: AsyncConnection, *, owner_id: int, item_id: int, changes: dict[str, Any]
) -> Row[Any] | None:
    """Apply ``changes`` (``updated_at`` follows) and return the new row; None if not found."""
    statement = update(Item).where(*_owned).values(changes).returning(*_items.c)
    result = await connection.execute(statement, {"owner": owner_id, "item": item_id})
    return result.one_or_none()


async def delete_owned(connection: AsyncConnection, *, owner_id: int, item_id: int) -> bool:
    result = await connection.execute(_DELETE_OWNED, {"owner": owner_id, "item": item_id})
    return result.one_or_none() is not None
