"""All SQL for the ``items`` table. Every query is scoped to an owner."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.items.models import Item


async def add(session: AsyncSession, owner_id: int, title: str, description: str | None) -> Item:
    item = Item(owner_id=owner_id, title=title, description=description)
    session.add(item)
    await session.flush()
    await session.refresh(item)
    return item


async def get_owned(session: AsyncSession, owner_id: int, item_id: int) -> Item | None:
    statement = select(Item).where(Item.id == item_id, Item.owner_id == owner_id)
    result: Item | None = await session.scalar(statement)
    return result


async def list_owned(
    session: AsyncSession, owner_id: int, *, before_id: int | None, limit: int
) -> list[Item]:
    """Newest first, ``limit`` rows older than ``before_id``: an index range scan, no OFFSET."""
    statement = select(Item).where(Item.owner_id == owner_id).order_by(Item.id.desc()).limit(limit)
    if before_id is not None:
        statement = statement.where(Item.id < before_id)
    return list(await session.scalars(statement))


async def refresh(session: AsyncSession, item: Item) -> Item:
    """Write pending changes and reload what the database set (``updated_at``)."""
    await session.flush()
    await session.refresh(item)
    return item


async def delete(session: AsyncSession, item: Item) -> None:
    await session.delete(item)
    await session.flush()
