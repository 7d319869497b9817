"""The items resource end to end against real PostgreSQL: CRUD, validation, ownership, pages.

Proves that an owner can create, read, partially update and delete an item; that bad
input (lengths, NUL characters, unknown or null fields, out-of-range ids) is a 422;
that another user's item is a 404 indistinguishable from a missing one and is left
untouched; that keyset pagination walks every item exactly once, newest first, even
with inserts between pages; that limits are bounded; that a malformed, tampered or
foreign cursor is a 400 (never a 500); and that every endpoint needs a token. Every
error is checked to be a problem document carrying the request ID.
"""

import base64
import json
import secrets
from datetime import datetime
from typing import Any

import httpx
import pytest

from app.core.pagination import CursorCodec
from tests.support.accounts import auth_headers
from tests.support.database import execute
from tests.support.problems import assert_problem

pytestmark = pytest.mark.anyio

ITEMS = "/api/v1/items"

Headers = dict[str, str]


def error_locations(body: dict[str, Any]) -> list[list[Any]]:
    errors = body["errors"]
    assert errors
    for error in errors:
        assert set(error) == {"location", "message", "type"}
    return [error["location"] for error in errors]


async def create_item(
    client: httpx.AsyncClient, headers: Headers, title: str, description: str | None = None
) -> Any:
    response = await client.post(
        ITEMS, json={"title": title, "description": description}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def list_page(
    client: httpx.AsyncClient, headers: Headers, **params: str | int
) -> dict[str, Any]:
    response = await client.get(ITEMS, params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"items", "next_cursor"}
    return body


@pytest.fixture
async def headers(client: httpx.AsyncClient) -> Headers:
    return await auth_headers(client)


# CRUD


async def test_create_returns_the_item(client: httpx.AsyncClient, headers: Headers) -> None:
    response = await client.post(
        ITEMS, json={"title": "Buy milk", "description": "two litres"}, headers=headers
    )
    assert response.status_code == 201
    item = response.json()
    assert set(item) == {"id", "title", "description", "created_at", "updated_at"}
    assert isinstance(item["id"], int)
    assert item["title"] == "Buy milk"
    assert item["description"] == "two litres"
    assert datetime.fromisoformat(item["updated_at"]) == datetime.fromisoformat(item["created_at"])


async def test_create_without_description_stores_null(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    response = await client.post(ITEMS, json={"title": "Bare"}, headers=headers)
    assert response.status_code == 201
    assert response.json()["description"] is None


async def test_read_returns_what_create_returned(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    created = await create_item(client, headers, "Read me", "body")
    response = await client.get(f"{ITEMS}/{created['id']}", headers=headers)
    assert response.status_code == 200
    assert response.json() == created


async def test_patch_changes_only_the_fields_sent(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    created = await create_item(client, headers, "Keep this title", "old")
    response = await client.patch(
        f"{ITEMS}/{created['id']}", json={"description": "x"}, headers=headers
    )
    assert response.status_code == 200
    updated = response.json()
    assert updated["id"] == created["id"]
    assert updated["title"] == "Keep this title"
    assert updated["description"] == "x"
    assert updated["created_at"] == created["created_at"]
    assert datetime.fromisoformat(updated["updated_at"]) >= datetime.fromisoformat(
        updated["created_at"]
    )
    read = await client.get(f"{ITEMS}/{created['id']}", headers=headers)
    assert read.json() == updated


async def test_patch_title_changes_the_title(client: httpx.AsyncClient, headers: Headers) -> None:
    created = await create_item(client, headers, "Before", "stays")
    response = await client.patch(
        f"{ITEMS}/{created['id']}", json={"title": "After"}, headers=headers
    )
    assert response.status_code == 200
    assert response.json()["title"] == "After"
    assert response.json()["description"] == "stays"


async def test_patch_null_description_clears_it(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    created = await create_item(client, headers, "Clear me", "something")
    response = await client.patch(
        f"{ITEMS}/{created['id']}", json={"description": None}, headers=headers
    )
    assert response.status_code == 200
    assert response.json()["description"] is None
    assert response.json()["title"] == "Clear me"
    read = await client.get(f"{ITEMS}/{created['id']}", headers=headers)
    assert read.json()["description"] is None


async def test_patch_null_title_is_422_and_changes_nothing(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    created = await create_item(client, headers, "Required", "d")
    response = await client.patch(f"{ITEMS}/{created['id']}", json={"title": None}, headers=headers)
    body = assert_problem(response, 422)
    assert error_locations(body)
    read = await client.get(f"{ITEMS}/{created['id']}", headers=headers)
    assert read.json() == created


async def test_patch_unknown_field_is_422(client: httpx.AsyncClient, headers: Headers) -> None:
    created = await create_item(client, headers, "Strict")
    response = await client.patch(f"{ITEMS}/{created['id']}", json={"owner_id": 1}, headers=headers)
    body = assert_problem(response, 422)
    assert ["body", "owner_id"] in error_locations(body)


async def test_delete_removes_the_item(client: httpx.AsyncClient, headers: Headers) -> None:
    created = await create_item(client, headers, "Delete me")
    url = f"{ITEMS}/{created['id']}"
    deleted = await client.delete(url, headers=headers)
    assert deleted.status_code == 204
    assert deleted.content == b""

    body = assert_problem(await client.get(url, headers=headers), 404)
    assert body["instance"] == url
    assert_problem(await client.delete(url, headers=headers), 404)
    assert_problem(await client.patch(url, json={"title": "ghost"}, headers=headers), 404)
    listed = await list_page(client, headers)
    assert created["id"] not in [item["id"] for item in listed["items"]]


async def test_missing_item_is_404(client: httpx.AsyncClient, headers: Headers) -> None:
    assert_problem(await client.get(f"{ITEMS}/{2**63 - 1}", headers=headers), 404)


# Validation


@pytest.mark.parametrize(
    ("payload", "location"),
    [
        ({"title": ""}, ["body", "title"]),
        ({"title": "t" * 201}, ["body", "title"]),
        ({"title": "ok", "description": "d" * 10_001}, ["body", "description"]),
        ({"title": "nul\x00byte"}, ["body", "title"]),
        ({"title": "ok", "description": "nul\x00byte"}, ["body", "description"]),
        ({}, ["body", "title"]),
        ({"title": "ok", "owner_id": 1}, ["body", "owner_id"]),
        ({"title": 5}, ["body", "title"]),
    ],
)
async def test_create_refuses_invalid_input_with_422(
    client: httpx.AsyncClient, headers: Headers, payload: dict[str, Any], location: list[str]
) -> None:
    body = assert_problem(await client.post(ITEMS, json=payload, headers=headers), 422)
    assert location in error_locations(body)


async def test_create_accepts_the_boundary_lengths(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    item = await create_item(client, headers, "t" * 200, "d" * 10_000)
    assert len(item["title"]) == 200
    assert len(item["description"]) == 10_000
    assert (await create_item(client, headers, "t"))["title"] == "t"


@pytest.mark.parametrize(
    "payload", [{"title": ""}, {"title": "t" * 201}, {"description": "d" * 10_001}]
)
async def test_patch_refuses_invalid_input_with_422(
    client: httpx.AsyncClient, headers: Headers, payload: dict[str, Any]
) -> None:
    created = await create_item(client, headers, "Valid")
    response = await client.patch(f"{ITEMS}/{created['id']}", json=payload, headers=headers)
    assert_problem(response, 422)


@pytest.mark.parametrize("item_id", ["0", "-1", str(2**63), "abc", "1.5"])
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_out_of_range_or_non_integer_item_id_is_422(
    client: httpx.AsyncClient, headers: Headers, method: str, item_id: str
) -> None:
    json_body = {"title": "x"} if method == "PATCH" else None
    response = await client.request(method, f"{ITEMS}/{item_id}", json=json_body, headers=headers)
    body = assert_problem(response, 422)
    assert ["path", "item_id"] in error_locations(body)


# Ownership


async def test_another_users_item_is_not_found_and_left_unchanged(
    client: httpx.AsyncClient,
) -> None:
    owner, stranger = await auth_headers(client), await auth_headers(client)
    item = await create_item(client, owner, "Private", "mine")
    url = f"{ITEMS}/{item['id']}"

    missing = await client.get(f"{ITEMS}/{2**63 - 1}", headers=stranger)
    responses = [
        await client.get(url, headers=stranger),
        await client.patch(url, json={"title": "stolen"}, headers=stranger),
        await client.delete(url, headers=stranger),
    ]
    for response in responses:
        body = assert_problem(response, 404)
        # Indistinguishable from an item that does not exist at all.
        assert body["detail"] == missing.json()["detail"]
        assert body["title"] == missing.json()["title"]

    listed = await list_page(client, stranger, limit=100)
    assert item["id"] not in [entry["id"] for entry in listed["items"]]

    read = await client.get(url, headers=owner)
    assert read.status_code == 200
    assert read.json() == item


async def test_each_user_lists_only_their_own_items(client: httpx.AsyncClient) -> None:
    first, second = await auth_headers(client), await auth_headers(client)
    mine = {(await create_item(client, first, f"first {n}"))["id"] for n in range(2)}
    theirs = {(await create_item(client, second, f"second {n}"))["id"] for n in range(3)}
    assert {item["id"] for item in (await list_page(client, first))["items"]} == mine
    assert {item["id"] for item in (await list_page(client, second))["items"]} == theirs


# Pagination


async def test_a_new_user_has_an_empty_list(client: httpx.AsyncClient, headers: Headers) -> None:
    assert await list_page(client, headers) == {"items": [], "next_cursor": None}


async def test_pages_walk_every_item_once_newest_first(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    created = [(await create_item(client, headers, f"item {n}"))["id"] for n in range(7)]
    newest_first = list(reversed(created))

    first = await list_page(client, headers, limit=3)
    assert first["next_cursor"] is not None
    second = await list_page(client, headers, limit=3, cursor=first["next_cursor"])
    assert second["next_cursor"] is not None
    third = await list_page(client, headers, limit=3, cursor=second["next_cursor"])
    assert third["next_cursor"] is None

    pages = [[item["id"] for item in page["items"]] for page in (first, second, third)]
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [item_id for page in pages for item_id in page] == newest_first


async def test_a_full_last_page_has_no_next_cursor(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    for n in range(4):
        await create_item(client, headers, f"item {n}")
    first = await list_page(client, headers, limit=2)
    second = await list_page(client, headers, limit=2, cursor=first["next_cursor"])
    assert len(second["items"]) == 2
    assert second["next_cursor"] is None


async def test_pages_are_stable_when_items_are_inserted_between_them(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    original = [(await create_item(client, headers, f"item {n}"))["id"] for n in range(7)]
    newest_first = list(reversed(original))

    first = await list_page(client, headers, limit=3)
    first_ids = [item["id"] for item in first["items"]]
    assert first_ids == newest_first[:3]

    inserted = {(await create_item(client, headers, f"late {n}"))["id"] for n in range(2)}

    second = await list_page(client, headers, limit=3, cursor=first["next_cursor"])
    third = await list_page(client, headers, limit=3, cursor=second["next_cursor"])
    later_ids = [item["id"] for page in (second, third) for item in page["items"]]
    assert later_ids == newest_first[3:]
    assert third["next_cursor"] is None
    seen = first_ids + later_ids
    assert len(seen) == len(set(seen)) == 7
    assert not inserted & set(seen)

    # The new items are on a fresh first page, newest first.
    fresh = await list_page(client, headers, limit=3)
    assert [item["id"] for item in fresh["items"]][:2] == sorted(inserted, reverse=True)


async def test_default_page_size_is_20(client: httpx.AsyncClient, headers: Headers) -> None:
    for n in range(21):
        await create_item(client, headers, f"item {n}")
    first = await list_page(client, headers)
    assert len(first["items"]) == 20
    assert first["next_cursor"] is not None
    rest = await list_page(client, headers, cursor=first["next_cursor"])
    assert len(rest["items"]) == 1
    assert rest["next_cursor"] is None
    everything = await list_page(client, headers, limit=100)
    assert len(everything["items"]) == 21
    assert everything["next_cursor"] is None


@pytest.mark.parametrize("limit", ["0", "-1", "101", "abc"])
async def test_limit_outside_1_to_100_is_422(
    client: httpx.AsyncClient, headers: Headers, limit: str
) -> None:
    response = await client.get(ITEMS, params={"limit": limit}, headers=headers)
    body = assert_problem(response, 422)
    assert ["query", "limit"] in error_locations(body)


@pytest.mark.parametrize("limit", [1, 100])
async def test_limit_bounds_are_accepted(
    client: httpx.AsyncClient, headers: Headers, limit: int
) -> None:
    await create_item(client, headers, "one")
    page = await list_page(client, headers, limit=limit)
    assert len(page["items"]) == 1


# Cursors


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.mark.parametrize(
    "cursor",
    [
        "abc",
        "a.b.c",
        ".",
        "%%%.%%%",
        "\u00e9t\u00e9.\u00e9t\u00e9",
        _b64(secrets.token_bytes(24)),
        f"{_b64(secrets.token_bytes(24))}.{_b64(secrets.token_bytes(16))}",
        f"{_b64(b'{}')}.{_b64(secrets.token_bytes(16))}",
        f"{_b64(b'not json')}.{_b64(secrets.token_bytes(16))}",
    ],
)
async def test_malformed_cursor_is_400(
    client: httpx.AsyncClient, headers: Headers, cursor: str
) -> None:
    response = await client.get(ITEMS, params={"cursor": cursor}, headers=headers)
    assert_problem(response, 400)


async def test_cursor_with_an_altered_position_is_400(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    for n in range(3):
        await create_item(client, headers, f"item {n}")
    cursor = (await list_page(client, headers, limit=1))["next_cursor"]
    assert cursor is not None
    payload_text, signature_text = cursor.split(".")
    position = json.loads(_unb64(payload_text))
    position["before_id"] += 1
    altered_payload = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    altered = f"{_b64(altered_payload)}.{signature_text}"
    assert altered != cursor

    assert_problem(await client.get(ITEMS, params={"cursor": altered}, headers=headers), 400)
    # The untouched cursor still works: only the alteration is refused.
    assert (await list_page(client, headers, limit=1, cursor=cursor))["items"]


async def test_cursor_signed_with_another_secret_is_400(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    item = await create_item(client, headers, "item")
    foreign = CursorCodec(b"other").encode({"before_id": item["id"] + 1})
    response = await client.get(ITEMS, params={"cursor": foreign}, headers=headers)
    assert_problem(response, 400)


async def test_overlong_cursor_is_422(client: httpx.AsyncClient, headers: Headers) -> None:
    response = await client.get(ITEMS, params={"cursor": "a" * 513}, headers=headers)
    body = assert_problem(response, 422)
    assert ["query", "cursor"] in error_locations(body)


# Authentication


async def test_the_token_of_a_deleted_account_reaches_nothing(
    client: httpx.AsyncClient, headers: Headers, database_url: str
) -> None:
    """Tokens are checked without looking the account up; once it is gone, so is all it owned.

    Its items went with it, reading its account or creating an item is a 401.
    """
    item = await create_item(client, headers, "outlived by its token")
    account = (await client.get("/api/v1/users/me", headers=headers)).json()
    await execute(database_url, "DELETE FROM users WHERE id = :id", id=account["id"])

    assert_problem(await client.get("/api/v1/users/me", headers=headers), 401)
    assert_problem(await client.post(ITEMS, json={"title": "new"}, headers=headers), 401)
    assert_problem(await client.get(f"{ITEMS}/{item['id']}", headers=headers), 404)
    assert (await list_page(client, headers))["items"] == []


@pytest.mark.parametrize(
    ("method", "path", "json_body"),
    [
        ("POST", ITEMS, {"title": "x"}),
        ("GET", ITEMS, None),
        ("GET", f"{ITEMS}/1", None),
        ("PATCH", f"{ITEMS}/1", {"title": "x"}),
        ("DELETE", f"{ITEMS}/1", None),
    ],
)
@pytest.mark.parametrize("authorization", [None, "Bearer abc"])
async def test_every_items_endpoint_needs_a_valid_token(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    json_body: dict[str, Any] | None,
    authorization: str | None,
) -> None:
    request_headers = {"Authorization": authorization} if authorization else {}
    response = await client.request(method, path, json=json_body, headers=request_headers)
    assert_problem(response, 401)
