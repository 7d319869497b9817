"""The example domain's whole journey over real HTTP: what a first user does.

Shared by the server test (gunicorn on the host) and the container test (the
composed stack), so both prove the same thing.
"""

from uuid import uuid4

import httpx


def run_user_journey(base_url: str) -> None:
    """Register, log in, create five items, list them in three pages, read, update, delete."""
    with httpx.Client(base_url=f"{base_url}/api/v1", timeout=10) as api:
        email = f"journey-{uuid4().hex}@example.com"
        password = "journey password"
        assert api.post("/users", json={"email": email, "password": password}).status_code == 201
        login = api.post("/auth/token", data={"username": email, "password": password})
        assert login.status_code == 200
        api.headers["Authorization"] = f"Bearer {login.json()['access_token']}"

        created = [api.post("/items", json={"title": f"item {n}"}).json()["id"] for n in range(5)]
        seen: list[int] = []
        pages = 0
        cursor: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = api.get("/items", params=params).json()
            seen += [item["id"] for item in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == 3
        assert seen == sorted(created, reverse=True)

        item_id = created[0]
        assert api.get(f"/items/{item_id}").json()["title"] == "item 0"
        updated = api.patch(f"/items/{item_id}", json={"description": "done"})
        assert updated.json()["description"] == "done"
        assert api.delete(f"/items/{item_id}").status_code == 204
        assert api.get(f"/items/{item_id}").status_code == 404
