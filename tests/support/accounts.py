"""Accounts for tests that need a caller: one way to register, log in and authenticate.

Async, for in-process clients; sync tests that drive a live server call ``asyncio.run``
on these, or ``token_on_server`` for a bearer token.
"""

import asyncio
from typing import Any
from uuid import uuid4

import httpx

PASSWORD = "correct horse battery staple"
USERS = "/api/v1/users"
TOKEN = "/api/v1/auth/token"
ME = "/api/v1/users/me"


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid4().hex}@example.com"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> Any:
    """The new account's public fields; fails the test unless it was created."""
    response = await client.post(USERS, json={"email": email, "password": password})
    assert response.status_code == 201, response.text
    return response.json()


async def log_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    """An access token for the account; fails the test unless one was issued."""
    response = await client.post(TOKEN, data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def new_account_token(client: httpx.AsyncClient) -> str:
    """An access token for a new account of its own."""
    email = unique_email()
    await register(client, email)
    return await log_in(client, email)


async def auth_headers(client: httpx.AsyncClient) -> dict[str, str]:
    """Headers that authenticate as a new account of their own."""
    return bearer(await new_account_token(client))


def token_on_server(base_url: str) -> str:
    """An access token for a new account on a running server, for sync tests."""

    async def fetch() -> str:
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            return await new_account_token(client)

    return asyncio.run(fetch())
