"""What a first user does, over real HTTP: the account, then each resource.

Shared by the server test (gunicorn on the host) and the container test (the
composed stack), so both prove the same thing.
"""

import asyncio

import httpx

from tests.support.accounts import ME, auth_headers


def run_user_journey(base_url: str) -> None:
    """Register, log in, read the account, then use the API's resources."""
    asyncio.run(_journey(base_url))


async def _journey(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        client.headers.update(await auth_headers(client))
        assert (await client.get(ME)).status_code == 200
        await _items(client)  # example:items


# example:items:begin
async def _items(client: httpx.AsyncClient) -> None:
    """Create five items, list them in three pages, read, update, delete."""
    items = "/api/v1/items"
    created = [
        (await client.post(items, json={"title": f"item {n}"})).json()["id"] for n in range(5)
    ]
    seen: list[int] = []
    pages = 0
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(items, params=params)).json()
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == sorted(created, reverse=True)

    item = f"{items}/{created[0]}"
    assert (await client.get(item)).json()["title"] == "item 0"
    updated = await client.patch(item, json={"description": "done"})
    assert updated.json()["description"] == "done"
    assert (await client.delete(item)).status_code == 204
    assert (await client.get(item)).status_code == 404


# example:items:end
