"""Process start-up and shutdown: what each worker owns, and the order it is released.

Start-up connects to nothing, so a worker boots while the database is down; shutdown
runs after the server has finished in-flight requests, then closes the pool.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TypedDict

import httpx
import structlog
from fastapi import FastAPI

from app.core.clock import Clock
from app.core.config import Settings
from app.core.http_client import create_http_client
from app.core.logging import configure_logging
from app.core.pagination import CursorCodec
from app.core.security import PasswordHasher, TokenService
from app.core.sentry import flush_sentry, init_sentry
from app.db.database import Database
from app.db.engine import create_engine
from app.ops.draining import drain_on_sigterm
from app.ops.metrics import Metrics
from app.ops.readiness import ReadinessProbe
from app.ops.tracing import start_tracing

logger = structlog.get_logger(__name__)


class LifespanState(TypedDict):
    """What every request sees as ``request.state``."""

    database: Database
    readiness_probe: ReadinessProbe
    password_hasher: PasswordHasher
    token_service: TokenService
    cursor_codec: CursorCodec
    http_client: httpx.AsyncClient


def build_lifespan(
    settings: Settings, clock: Clock
) -> Callable[[FastAPI], AbstractAsyncContextManager[LifespanState]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[LifespanState]:
        configure_logging(settings)
        init_sentry(settings)
        engine = create_engine(settings)
        stop_tracing = start_tracing(settings, engine)  # a no-op unless OTLP is configured
        metrics = Metrics() if settings.metrics_enabled else None
        if metrics is not None:
            metrics.watch_pool(engine, settings.db_pool_size)
            metrics.build_info.labels(settings.app_version, settings.git_sha).set(1)
        app.state.metrics = metrics
        database = Database(engine)
        probe = ReadinessProbe(
            database,
            timeout=settings.ready_timeout,
            cache_seconds=settings.ready_cache_seconds,
            on_result=metrics.record_readiness if metrics else lambda _: None,
        )
        stop_draining_hook = drain_on_sigterm(probe, settings.shutdown_drain_seconds)
        logger.info(
            "worker started", environment=settings.environment, version=settings.app_version
        )
        assert settings.jwt_secret_key is not None  # noqa: S101  (guaranteed by Settings)
        http_client = create_http_client(settings)
        try:
            yield {
                "database": database,
                "readiness_probe": probe,
                "password_hasher": PasswordHasher(settings),
                "token_service": TokenService(settings, clock),
                "cursor_codec": CursorCodec(settings.jwt_secret_key.get_secret_value().encode()),
                "http_client": http_client,
            }
        finally:
            stop_draining_hook()
            await http_client.aclose()
            await engine.dispose()
            flush_sentry()
            # Sends the spans still queued: network I/O, so off the event loop.
            await asyncio.to_thread(stop_tracing)
            logger.info("worker stopped, database pool closed")

    return lifespan
