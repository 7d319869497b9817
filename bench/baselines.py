"""The baselines ``make bench`` measures the service against: the same work, by hand.

Each does what the service's route does with nothing of the template: no middleware,
no dependency chain, no ORM. ``by_hand_app`` is what a careful developer writes
straight on FastAPI, PyJWT and an asyncpg pool, with orjson for the responses, so the
ratios say what the template's plumbing costs over the fastest obvious code. Nothing
here imports ``app``: a baseline's cold start and memory must not include ours.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import asyncpg
import jwt
import orjson
from fastapi import FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

TRIVIAL_PATH = "/bench/hello"
TRIVIAL_BODY = {"message": "hello"}


async def trivial() -> dict[str, str]:
    """The route both the service and bare FastAPI serve at ``TRIVIAL_PATH``."""
    return TRIVIAL_BODY


async def health() -> JSONResponse:
    """The service's liveness answer, written as a FastAPI user would."""
    return JSONResponse({"status": "ok"})


def bare_app() -> FastAPI:
    """FastAPI with no middleware, error handlers or lifespan."""
    app = FastAPI()
    app.add_api_route("/health", health)
    app.add_api_route(TRIVIAL_PATH, trivial)
    return app


_READ = (
    "SELECT id, title, description, created_at, updated_at FROM items"
    " WHERE id = $1 AND owner_id = $2"
)
_LIST = (
    "SELECT id, title, description, created_at, updated_at FROM items"
    " WHERE owner_id = $1 ORDER BY id DESC LIMIT $2"
)
_CREATE = (
    "INSERT INTO items (owner_id, title, description) VALUES ($1, $2, $3)"
    " RETURNING id, title, description, created_at, updated_at"
)
BearerHeader = Annotated[str | None, Header(alias="Authorization")]


class NewItem(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)


def _json(content: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")


def by_hand_app() -> FastAPI:
    """Read, list and create items on a bare asyncpg pool, the token checked with PyJWT.

    Reads the same variables as the service (``DATABASE_URL``, ``JWT_SECRET_KEY``,
    ``JWT_ISSUER``, ``JWT_AUDIENCE``, ``DB_POOL_SIZE`` + ``DB_MAX_OVERFLOW``), so both
    verify the same tokens against the same database with as many connections.
    """
    dsn = os.environ["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    secret = os.environ["JWT_SECRET_KEY"]
    issuer = os.environ.get("JWT_ISSUER", "fastapi-service")
    audience = os.environ.get("JWT_AUDIENCE", "fastapi-service")
    max_connections = int(os.environ.get("DB_POOL_SIZE", "5")) + int(
        os.environ.get("DB_MAX_OVERFLOW", "5")
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with asyncpg.create_pool(dsn, min_size=1, max_size=max_connections) as pool:
            app.state.pool = pool
            yield

    def owner_id(authorization: str | None) -> int:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            raise HTTPException(401)
        try:
            claims = jwt.decode(
                token,
                secret,
                algorithms=["HS256"],
                audience=audience,
                issuer=issuer,
                options={"require": ["exp", "iat", "nbf", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError:
            raise HTTPException(401) from None
        return int(claims["sub"])

    app = FastAPI(lifespan=lifespan)
    app.add_api_route("/health", health)  # the benchmark waits for it before loading

    @app.get("/items/{item_id}")
    async def read_item(item_id: int, request: Request, authorization: BearerHeader) -> Response:
        row = await request.app.state.pool.fetchrow(_READ, item_id, owner_id(authorization))
        if row is None:
            raise HTTPException(404)
        return _json(dict(row))

    @app.get("/items")
    async def list_items(
        request: Request,
        authorization: BearerHeader,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> Response:
        rows = await request.app.state.pool.fetch(_LIST, owner_id(authorization), limit + 1)
        next_cursor = str(rows[limit - 1]["id"]) if len(rows) > limit else None
        return _json({"items": [dict(row) for row in rows[:limit]], "next_cursor": next_cursor})

    @app.post("/items")
    async def create_item(body: NewItem, request: Request, authorization: BearerHeader) -> Response:
        owner = owner_id(authorization)
        async with request.app.state.pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(_CREATE, owner, body.title, body.description)
        return _json(dict(row), status_code=201)

    return app
