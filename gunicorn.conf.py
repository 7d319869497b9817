"""Gunicorn configuration: ``gunicorn -c gunicorn.conf.py`` starts the service.

Every value comes from the validated settings (environment variables), so an invalid
configuration stops the master here, before any port is bound.
"""

import gc

# No collection while the master imports the app (here and by preload_app below): it
# finds nothing to free, costs a tenth of the start-up, and the little it frees would
# leave holes in pages the workers share. It starts once the server is ready.
gc.disable()

from typing import Any  # noqa: E402

import structlog  # noqa: E402

from app.core.config import get_settings_or_exit  # noqa: E402
from app.ops.metrics_dir import prepare_metrics_dir  # noqa: E402
from app.ops.server import (  # noqa: E402
    GunicornLogger,
    connection_budget,
    memory_limit_mb,
    password_hashing_mb,
    resident_mb,
    usable_cpu_count,
    worker_count,
)

settings = get_settings_or_exit()
# Before the app (and prometheus_client) is imported below, by preload_app.
metrics_dir = prepare_metrics_dir(settings)

wsgi_app = "app.main:create_app()"
# uvicorn with limits on request heads and no `server` header (app/ops/worker.py).
worker_class = "app.ops.worker.HeadLimitedWorker"
# Import the app once in the master and fork: workers start in milliseconds and share
# the imported code's memory. Safe because building the app opens no connection.
preload_app = True
workers = worker_count(settings, usable_cpu_count())
# The API, then (metrics on) the metrics listener: the same workers accept on both, and
# app.ops.probes tells them apart by port, so /metrics is served only on the second.
bind = [settings.api_bind]
if settings.metrics_bind is not None:
    bind.append(settings.metrics_bind)
timeout = settings.gunicorn_timeout
graceful_timeout = settings.gunicorn_graceful_timeout
keepalive = settings.gunicorn_keepalive
forwarded_allow_ips = settings.forwarded_allow_ips
loglevel = settings.log_level.lower()
logger_class = GunicornLogger
# A runtime control socket is an attack surface, and it would be written under $HOME.
control_socket_disable = True
accesslog = None  # the app's access-log middleware writes one structured line per request


# A request allocates and frees thousands of objects; at Python's default (700) the
# young generation is collected every few dozen requests and the older ones soon after,
# for almost nothing: reference counting frees nearly all of it. Collecting every
# 50,000 allocations made a database read 10-15% cheaper and halved its p99 (make bench),
# for at most a few MB of cyclic garbage waiting a little longer.
_GC_THRESHOLDS = (50_000, 20, 100)


def _collect_garbage_from_now_on() -> None:
    # Frozen first: collected now, everything imported would be walked three times over,
    # once in each generation, and it lives as long as the process anyway.
    gc.freeze()
    gc.set_threshold(*_GC_THRESHOLDS)
    gc.enable()


def on_reload(_server: object) -> None:
    """Reading this file again (SIGHUP) turned collection off: on again before new workers."""
    _collect_garbage_from_now_on()


def when_ready(_server: object) -> None:
    """Start collecting garbage, then log the resolved sizing and budgets once."""
    _collect_garbage_from_now_on()
    budget = connection_budget(settings, workers)
    hashing_mb = password_hashing_mb(settings, workers)
    # Each worker starts as a copy of this master, app imported: its size is a fair
    # (if generous, as shared pages count in every copy) estimate of a worker's.
    memory_mb = workers * resident_mb() + hashing_mb
    limit_mb = memory_limit_mb(settings)
    log = structlog.get_logger("gunicorn.conf")
    log.info(
        "server ready",
        bind=bind,
        workers=workers,
        timeout_s=timeout,
        graceful_timeout_s=graceful_timeout,
        keepalive_s=keepalive,
        db_connection_budget=budget,
        db_max_connections=settings.db_max_connections,
        hashing_memory_mb=hashing_mb,
        memory_estimate_mb=memory_mb,
        memory_limit_mb=limit_mb,
    )
    if budget > settings.db_max_connections:
        log.warning(
            "database connection budget exceeds DB_MAX_CONNECTIONS; lower WEB_CONCURRENCY, "
            "DB_POOL_SIZE or DB_MAX_OVERFLOW",
            db_connection_budget=budget,
            db_max_connections=settings.db_max_connections,
        )
    if limit_mb is not None and memory_mb > limit_mb:
        log.warning(
            "workers and password hashing can outgrow the memory limit; lower "
            "WEB_CONCURRENCY, PASSWORD_HASH_CONCURRENCY or PASSWORD_HASH_MEMORY_KIB",
            memory_estimate_mb=memory_mb,
            hashing_memory_mb=hashing_mb,
            memory_limit_mb=limit_mb,
        )


def child_exit(_server: object, worker: Any) -> None:
    """Drop a dead worker's live gauges, so they do not linger in the sums."""
    if metrics_dir is not None:
        from prometheus_client import multiprocess  # noqa: PLC0415  (after the env is set)

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def pre_fork(_server: object, _worker: object) -> None:
    """Put everything the master made out of the cyclic collector's reach.

    The imported app lives as long as the worker, so collecting it is wasted work: a
    full collection walked all of it and cost a tenth of a database read's time. And
    a collection writes to every object it visits, which would copy the master's
    pages, shared after the fork, into each worker's own memory.
    """
    gc.freeze()
