"""Use cases for items. An item belongs to one user; to anyone else it does not exist."""

from http import HTTPStatus
from typing import Any

from sqlalchemy import Row
from sqlalchemy.exc import IntegrityError

from app.auth.errors import AuthenticationError
from app.core.errors import NotFoundError
from app.core.pagination import CursorCodec
from app.db.columns import MAX_ID
from app.db.database import Database
from app.idempotency.keyed_writes import KeyedWrites
from app.items import repository
from app.items.schemas import ItemCreate, ItemRead

_FOREIGN_KEY_VIOLATION = "23503"  # SQLSTATE
_CREATE = "POST /api/v1/items"
# What a cursor records: the id the next page's items are older than.
_POSITION = ("before_id",)


async def create(
    db: Database,
    keyed: KeyedWrites,
    *,
    owner_id: int,
    item: ItemCreate,
    idempotency_key: str | None,
) -> tuple[ItemRead, int | None]:
    """The new item, and None; with a repeated Idempotency-Key, the item made the first
    time and the status it was answered with."""
    try:
        async with keyed.transaction(
            db,
            owner_id=owner_id,
            key=idempotency_key,
            operation=_CREATE,
            body=item.model_dump_json(),
        ) as write:
            if write.replay is not None:
                return ItemRead.model_validate(write.replay.body), write.replay.status
            row = await repository.add(
                write.connection, owner_id=owner_id, title=item.title, description=item.description
            )
            created = ItemRead.model_validate(row)
            await write.record(HTTPStatus.CREATED, created.model_dump(mode="json"))
            return created, None
    except IntegrityError as exc:
        # The owner's foreign key: the token is valid but its account no longer exists.
        if getattr(exc.orig, "sqlstate", None) == _FOREIGN_KEY_VIOLATION:
            raise AuthenticationError("token subject is not an account") from None
        raise


async def get(db: Database, *, owner_id: int, item_id: int) -> Row[Any]:
    item = await repository.get_owned(db, owner_id=owner_id, item_id=item_id)
    if item is None:
        raise NotFoundError
    return item


async def list_page(
    db: Database, codec: CursorCodec, *, owner_id: int, cursor: str | None, limit: int
) -> tuple[list[Row[Any]], str | None]:
    """One page and the cursor of the next (None on the last page)."""
    before_id = (
        codec.decode(cursor, fields=_POSITION, maximum=MAX_ID)["before_id"] if cursor else MAX_ID
    )
    # One row more than asked tells whether another page exists, without a COUNT.
    rows = await repository.list_owned(db, owner_id=owner_id, before_id=before_id, limit=limit + 1)
    items = rows[:limit]
    next_cursor = codec.encode({"before_id": items[-1].id}) if len(rows) > limit else None
    return items, next_cursor


async def update(db: Database, *, owner_id: int, item_id: int, changes: dict[str, Any]) -> Row[Any]:
    if not changes:
        return await get(db, owner_id=owner_id, item_id=item_id)
    async with db.transaction() as connection:
        item = await repository.update_owned(
            connection, owner_id=owner_id, item_id=item_id, changes=changes
        )
    if item is None:
        raise NotFoundError
    return item


async def delete(db: Database, *, owner_id: int, item_id: int) -> None:
    async with db.transaction() as connection:
        deleted = await repository.delete_owned(connection, owner_id=owner_id, item_id=item_id)
    if not deleted:
        raise NotFoundError
