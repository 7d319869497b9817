"""The real application plus a few routes that only tests need.

Server tests run it under real gunicorn (``tests.apps:create_test_app()``) to have a
request that is slow, one that reads a body, one that fails, and one whose commit fails.
"""

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Body, FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy import text

from app.core.clock import Clock, utc_now
from app.core.config import Settings
from app.core.http_client import HttpClientDep
from app.db.database import DatabaseDep
from app.main import create_app

# Internal detail that belongs in the server's log and never in a response.
INTERNAL_FAILURE_MESSAGE = "lock timeout on table internal_ledger_7f3a"
_INSERT_PROBE = text("INSERT INTO commit_probe (value) VALUES (:v)")


class Written(BaseModel):
    written: list[int]


def create_test_app(settings: Settings | None = None, *, clock: Clock = utc_now) -> FastAPI:
    app = create_app(settings, clock=clock)

    @app.get("/test/ok")
    async def ok() -> dict[str, str]:
        """An ordinary route: the whole middleware stack applies, nothing else happens."""
        return {"status": "ok"}

    @app.get("/test/garbage-collection")
    async def garbage_collection() -> dict[str, bool | int]:
        """Whether this worker collects garbage, and how much it inherited frozen."""
        return {"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}

    @app.get("/test/slow")
    async def slow(seconds: float = 2.0) -> dict[str, float]:
        await asyncio.sleep(seconds)
        return {"slept": seconds}

    @app.get("/test/block")
    async def block(ms: int = 10) -> dict[str, int]:
        """Blocks the event loop on purpose: a busy worker cannot accept, so load spreads."""
        time.sleep(ms / 1000)  # noqa: ASYNC251  (the point of this route)
        return {"blocked_ms": ms}

    @app.get("/test/outbound")
    async def outbound(url: str, client: HttpClientDep) -> dict[str, str | None]:
        """Call another service through the shared client; report what it saw."""
        response = await client.get(url)
        return {"received_request_id": response.headers.get("x-seen-request-id")}

    @app.get("/test/numbered/{number}")
    async def numbered(number: int) -> dict[str, int]:
        """A route with a path parameter: metrics and logs name it by its template."""
        return {"number": number}

    @app.post("/test/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"received_bytes": len(await request.body())}

    @app.post("/test/boom")
    async def boom(payload: Annotated[dict[str, Any] | None, Body()] = None) -> None:  # noqa: ARG001
        """Fails after FastAPI parsed the JSON body, so an error reporter attaches it."""
        raise RuntimeError(INTERNAL_FAILURE_MESSAGE)

    @app.get("/test/hold-connection")
    async def hold_connection(db: DatabaseDep, seconds: float = 1.0) -> dict[str, float]:
        """Keep one pooled connection busy, so the next request must wait for the pool."""
        await db.fetch_one(text("SELECT pg_sleep(:s)"), {"s": seconds})
        return {"held": seconds}

    @app.get("/test/stream")
    async def stream(chunks: int = 3, interval: float = 0.1) -> StreamingResponse:
        """A body in ``chunks`` pieces: the first at once, the others ``interval`` s apart."""

        async def pieces() -> AsyncIterator[bytes]:
            for number in range(chunks):
                if number:
                    await asyncio.sleep(interval)
                yield f"chunk {number}\n".encode()

        return StreamingResponse(pieces(), media_type="text/plain")

    @app.post("/test/slow-write", status_code=201)
    async def slow_write(db: DatabaseDep, value: int, seconds: float = 1.0) -> Written:
        """Insert a row, then hold the transaction open in the database before committing."""
        async with db.transaction() as connection:
            await connection.execute(_INSERT_PROBE, {"v": value})
            await connection.execute(text("SELECT pg_sleep(:s)"), {"s": seconds})
        return Written(written=[value])

    @app.post("/test/write", status_code=201)
    async def write(values: list[int], db: DatabaseDep) -> Written:
        """Insert into ``commit_probe``, whose unique constraint is only checked at commit."""
        async with db.transaction() as connection:
            for value in values:
                await connection.execute(_INSERT_PROBE, {"v": value})
        return Written(written=values)

    return app


def create_app_without_schema() -> FastAPI:
    """The real app serving no OpenAPI schema and no docs, as a locked-down deployment may.

    The smoke test must then fall back to its own list of key endpoints.
    """
    app = create_app()
    hidden = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    app.router.routes[:] = [
        route for route in app.router.routes if getattr(route, "path", None) not in hidden
    ]
    return app
