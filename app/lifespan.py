"""Process start-up and shutdown: what each worker owns, and the order it is released.

Start-up connects to nothing, so a worker boots while the database is down; shutdown
runs after the server has finished in-flight requests, then closes the pool. What is
built here reaches requests through the ``Resource`` declared beside each class.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI

from app.auth.passwords import PASSWORD_HASHER, PasswordHasher
from app.auth.throttle import LOGIN_THROTTLE, LoginThrottle
from app.auth.tokens import TOKEN_SERVICE, TokenService
from app.core.clock import Clock
from app.core.config import Settings
from app.core.http_client import HTTP_CLIENT, create_http_client
from app.core.logging import ACCESS_LOG, configure_logging
from app.core.pagination import CURSOR_CODEC, CursorCodec
from app.db.database import DATABASE, Database
from app.db.engine import create_engine
from app.idempotency.keyed_writes import KEYED_WRITES, KeyedWrites
from app.middleware.deadline import REQUEST_DEADLINES, RequestDeadlines
from app.ops.draining import drain_on_sigterm
from app.ops.metrics import METRICS, Metrics
from app.ops.readiness import READINESS_PROBE, ReadinessProbe
from app.ops.sentry import flush_sentry, init_sentry
from app.ops.tracing import add_trace_ids, start_tracing

logger = structlog.get_logger(__name__)


def build_lifespan(
    settings: Settings, clock: Clock
) -> Callable[[FastAPI], AbstractAsyncContextManager[dict[str, Any]]]:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        # With tracing on, every line written inside a request names its trace and span.
        tracing = settings.otel_exporter_otlp_endpoint is not None
        access_log = configure_logging(
            settings, extra_processors=[add_trace_ids] if tracing else []
        )
        init_sentry(settings)
        engine = create_engine(settings)
        stop_tracing = start_tracing(settings, engine)  # a no-op unless OTLP is configured
        metrics = Metrics() if settings.metrics_enabled else None
        if metrics is not None:
            metrics.watch_pool(engine, settings.db_pool_size)
            metrics.build_info.labels(settings.app_version, settings.git_sha).set(1)
        database = Database(engine, transaction_pooler=settings.db_pgbouncer)
        probe = ReadinessProbe(
            {"database": database.ping},
            timeout=settings.ready_timeout,
            cache_seconds=settings.ready_cache_seconds,
            on_result=metrics.record_readiness if metrics else lambda _: None,
        )
        stop_draining_hook = drain_on_sigterm(probe, settings.shutdown_drain_seconds)
        http_client = create_http_client(settings)
        deadlines = RequestDeadlines(settings.request_timeout_seconds)
        deadlines.start()
        state: dict[str, Any] = {}
        ACCESS_LOG.put(state, access_log)
        DATABASE.put(state, database)
        READINESS_PROBE.put(state, probe)
        METRICS.put(state, metrics)
        hasher = PasswordHasher(settings)
        PASSWORD_HASHER.put(state, hasher)
        throttle = LoginThrottle(
            settings,
            on_store_error=metrics.rate_limit_store_errors.inc if metrics else lambda: None,
        )
        LOGIN_THROTTLE.put(state, throttle)
        TOKEN_SERVICE.put(state, TokenService(settings, clock))
        CURSOR_CODEC.put(state, CursorCodec(settings.jwt_secret_key.get_secret_value().encode()))
        HTTP_CLIENT.put(state, http_client)
        KEYED_WRITES.put(state, KeyedWrites(settings.idempotency_ttl_hours))
        REQUEST_DEADLINES.put(state, deadlines)
        if settings.rate_limit_storage_url.get_secret_value().startswith("memory"):
            logger.warning(
                "log-in throttling counts per process (memory://): use Redis to share it"
            )
        logger.info(
            "worker started", environment=settings.environment, version=settings.app_version
        )
        try:
            yield state
        finally:
            stop_draining_hook()
            await deadlines.stop()
            await throttle.close()
            hasher.close()
            await http_client.aclose()
            await engine.dispose()
            flush_sentry()
            # Sends the spans still queued: network I/O, so off the event loop.
            await asyncio.to_thread(stop_tracing)
            logger.info("worker stopped, database pool closed")

    return lifespan
