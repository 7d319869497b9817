"""Request ID, security headers, CORS and body-limit middleware, through the in-process app."""

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.apps import INTERNAL_FAILURE_MESSAGE
from tests.support.accounts import auth_headers
from tests.support.clients import app_client
from tests.support.settings import make_settings

pytestmark = pytest.mark.anyio

OK = "/test/ok"  # an ordinary route, under every middleware


@pytest.mark.parametrize(
    "incoming",
    ["abc", "nginx-5f1e2d.3c4b", "A" * 128, "0123456789abcdef0123456789abcdef", "a_b.c-d"],
)
async def test_well_formed_request_id_is_kept(client: httpx.AsyncClient, incoming: str) -> None:
    response = await client.get(OK, headers={"X-Request-ID": incoming})
    assert response.headers["X-Request-ID"] == incoming


@pytest.mark.parametrize(
    "incoming", ["", "A" * 129, "has space", "semi;colon", "new\u00e9line", "<script>", "a/b"]
)
async def test_malformed_request_id_is_replaced_by_a_fresh_one(
    client: httpx.AsyncClient, incoming: str
) -> None:
    response = await client.get(OK, headers=[(b"X-Request-ID", incoming.encode())])
    generated = response.headers["X-Request-ID"]
    assert generated != incoming
    assert len(generated) == 32
    assert int(generated, 16) >= 0


async def test_each_request_without_id_gets_its_own(client: httpx.AsyncClient) -> None:
    first = await client.get(OK)
    second = await client.get(OK)
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


async def test_error_bodies_carry_the_request_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/no-such-route", headers={"X-Request-ID": "trace-me"})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["request_id"] == "trace-me"


async def test_unhandled_exception_is_a_generic_problem_with_request_id(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/test/boom", headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["X-Request-ID"] == "boom-1"
    body = response.json()
    assert body["request_id"] == "boom-1"
    assert INTERNAL_FAILURE_MESSAGE not in response.text
    assert "Traceback" not in response.text


@pytest.fixture
async def cors_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        database_url,
        cors_allow_origins="https://app.example,https://admin.example",
        cors_allow_credentials=True,
    )
    async with app_client(settings) as client:
        yield client


async def test_cors_preflight_from_allowed_origin_is_granted(
    cors_client: httpx.AsyncClient,
) -> None:
    response = await cors_client.options(
        OK,
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "X-Request-ID",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "x-request-id" in response.headers["access-control-allow-headers"].lower()


async def test_cors_simple_request_exposes_request_id(cors_client: httpx.AsyncClient) -> None:
    response = await cors_client.get(OK, headers={"Origin": "https://admin.example"})
    assert response.headers["access-control-allow-origin"] == "https://admin.example"
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()


async def test_cors_refuses_unlisted_origin(cors_client: httpx.AsyncClient) -> None:
    preflight = await cors_client.options(
        OK,
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    simple = await cors_client.get(OK, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


async def test_cors_is_closed_by_default(client: httpx.AsyncClient) -> None:
    response = await client.get(OK, headers={"Origin": "https://app.example"})
    assert "access-control-allow-origin" not in response.headers


LIMIT = 1024 * 1024


async def test_body_within_limit_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post("/test/echo", content=b"x" * LIMIT)
    assert response.status_code == 200
    assert response.json() == {"received_bytes": LIMIT}


async def test_declared_oversized_body_is_refused_with_413(client: httpx.AsyncClient) -> None:
    response = await client.post("/test/echo", content=b"x" * (LIMIT + 1))
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 413


async def test_chunked_oversized_body_is_refused_with_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(32):
            yield b"x" * 65536  # 2 MiB in all, no Content-Length

    response = await client.post("/test/echo", content=chunks())
    assert response.status_code == 413
    assert response.json()["status"] == 413


async def test_chunked_body_within_limit_is_accepted(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * 1000

    response = await client.post("/test/echo", content=chunks())
    assert response.json() == {"received_bytes": 4000}


async def test_api_responses_forbid_sniffing_framing_referrers_and_caching(
    client: httpx.AsyncClient,
) -> None:
    headers = await auth_headers(client)
    for response in (
        await client.get("/api/v1/users/me", headers=headers),  # an account
        await client.get("/api/v1/users/me"),  # a problem: no token
        await client.post("/api/v1/auth/token", data={"username": "x", "password": "y"}),
    ):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Content-Security-Policy"] == (
            "default-src 'none'; frame-ancestors 'none'"
        )
        assert response.headers["Cache-Control"] == "no-store"


async def test_the_docs_keep_what_they_need_to_render(client: httpx.AsyncClient) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in docs.headers  # it loads Swagger UI's assets
