"""Use cases for items. An item belongs to one user; to anyone else it does not exist."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import InvalidInputError, NotFoundError
from app.core.pagination import CursorCodec
from app.items import repository
from app.items.models import Item


async def create(session: AsyncSession, owner_id: int, title: str, description: str | None) -> Item:
    return await repository.add(session, owner_id, title, description)


async def get(session: AsyncSession, owner_id: int, item_id: int) -> Item:
    item = await repository.get_owned(session, owner_id, item_id)
    if item is None:
        raise NotFoundError
    return item


async def list_page(
    session: AsyncSession, codec: CursorCodec, owner_id: int, cursor: str | None, limit: int
) -> tuple[list[Item], str | None]:
    """One page and the cursor of the next (None on the last page)."""
    before_id = _position(codec, cursor) if cursor else None
    # One row more than asked tells whether another page exists, without a COUNT.
    rows = await repository.list_owned(session, owner_id, before_id=before_id, limit=limit + 1)
    items = rows[:limit]
    next_cursor = codec.encode({"before_id": items[-1].id}) if len(rows) > limit else None
    return items, next_cursor


async def update(
    session: AsyncSession, owner_id: int, item_id: int, changes: dict[str, Any]
) -> Item:
    item = await get(session, owner_id, item_id)
    for field, value in changes.items():
        setattr(item, field, value)
    return await repository.refresh(session, item)


async def delete(session: AsyncSession, owner_id: int, item_id: int) -> None:
    await repository.delete(session, await get(session, owner_id, item_id))


def _position(codec: CursorCodec, cursor: str) -> int:
    before_id = codec.decode(cursor).get("before_id")
    if not isinstance(before_id, int):
        raise InvalidInputError("The cursor is not valid.")
    return before_id
