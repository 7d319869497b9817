"""The items endpoints: HTTP in and out only, scoped to the caller the token names."""

from typing import Annotated

from fastapi import Path, Query, Response

from app.auth.dependencies import CurrentPrincipal
from app.core.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, CursorCodecDep, Page
from app.core.routing import resource_router
from app.db.columns import MAX_ID
from app.db.database import DatabaseDep
from app.idempotency.keyed_writes import IdempotencyKeyHeader, KeyedWritesDep
from app.items import service
from app.items.schemas import ItemCreate, ItemRead, ItemUpdate

router = resource_router("items")

# Bounded so an absurd id is a 422, never an out-of-range error from the database.
ItemId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.post("", status_code=201, summary="Create an item")
async def create_item(
    body: ItemCreate,
    caller: CurrentPrincipal,
    db: DatabaseDep,
    keyed: KeyedWritesDep,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> ItemRead:
    item, replayed_status = await service.create(
        db, keyed, owner_id=caller.account_id, item=body, idempotency_key=idempotency_key
    )
    if replayed_status is not None:
        response.status_code = replayed_status
        response.headers["Idempotent-Replayed"] = "true"
    return item


@router.get("", summary="List your items, newest first, one page at a time")
async def list_items(
    caller: CurrentPrincipal,
    db: DatabaseDep,
    codec: CursorCodecDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None, Query(max_length=512, description="next_cursor of the previous page")
    ] = None,
) -> Page[ItemRead]:
    items, next_cursor = await service.list_page(
        db, codec, owner_id=caller.account_id, cursor=cursor, limit=limit
    )
    return Page[ItemRead](
        items=[ItemRead.model_validate(item) for item in items], next_cursor=next_cursor
    )


@router.get("/{item_id}", summary="Read one of your items")
async def read_item(item_id: ItemId, caller: CurrentPrincipal, db: DatabaseDep) -> ItemRead:
    return ItemRead.model_validate(
        await service.get(db, owner_id=caller.account_id, item_id=item_id)
    )


@router.patch("/{item_id}", summary="Change the fields you send")
async def update_item(
    item_id: ItemId, body: ItemUpdate, caller: CurrentPrincipal, db: DatabaseDep
) -> ItemRead:
    changes = body.model_dump(exclude_unset=True)
    return ItemRead.model_validate(
        await service.update(db, owner_id=caller.account_id, item_id=item_id, changes=changes)
    )


@router.delete("/{item_id}", status_code=204, summary="Delete one of your items")
async def delete_item(item_id: ItemId, caller: CurrentPrincipal, db: DatabaseDep) -> Response:
    await service.delete(db, owner_id=caller.account_id, item_id=item_id)
    return Response(status_code=204)
