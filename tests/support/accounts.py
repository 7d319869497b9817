"""A new account and the headers that authenticate as it, for tests that need a caller."""

from uuid import uuid4

import httpx

PASSWORD = "correct horse battery staple"


async def auth_headers(client: httpx.AsyncClient) -> dict[str, str]:
    """Register a new user and return the headers that authenticate as them."""
    email = f"{uuid4().hex}@example.com"
    registered = await client.post("/api/v1/users", json={"email": email, "password": PASSWORD})
    assert registered.status_code == 201, registered.text
    response = await client.post(
        "/api/v1/auth/token", data={"username": email, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}
