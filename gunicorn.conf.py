"""Gunicorn configuration: ``gunicorn -c gunicorn.conf.py`` starts the service.

Every value comes from the validated settings (environment variables), so an invalid
configuration stops the master here, before any port is bound.
"""

from typing import Any

import structlog

from app.core.config import get_settings_or_exit
from app.core.server import (
    GunicornLogger,
    connection_budget,
    prepare_metrics_dir,
    usable_cpu_count,
    worker_count,
)

settings = get_settings_or_exit()
# Before the app (and prometheus_client) is imported below, by preload_app.
metrics_dir = prepare_metrics_dir(settings)

wsgi_app = "app.main:app"
worker_class = "uvicorn_worker.UvicornWorker"
# Import the app once in the master and fork: workers start in milliseconds and share
# the imported code's memory. Safe because building the app opens no connection.
preload_app = True
workers = worker_count(settings, usable_cpu_count())
bind = [settings.bind or f"0.0.0.0:{settings.port}"]
timeout = settings.gunicorn_timeout
graceful_timeout = settings.gunicorn_graceful_timeout
keepalive = settings.gunicorn_keepalive
forwarded_allow_ips = settings.forwarded_allow_ips
loglevel = settings.log_level.lower()
logger_class = GunicornLogger
# A runtime control socket is an attack surface, and it would be written under $HOME.
control_socket_disable = True
accesslog = None  # the app's access-log middleware writes one structured line per request


def when_ready(_server: object) -> None:
    """Log the resolved sizing once, where operators look first."""
    budget = connection_budget(settings, workers)
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
    )
    if budget > settings.db_max_connections:
        log.warning(
            "database connection budget exceeds DB_MAX_CONNECTIONS; lower WEB_CONCURRENCY, "
            "DB_POOL_SIZE or DB_MAX_OVERFLOW",
            db_connection_budget=budget,
            db_max_connections=settings.db_max_connections,
        )


def child_exit(_server: object, worker: Any) -> None:
    """Drop a dead worker's live gauges, so they do not linger in the sums."""
    if metrics_dir is not None:
        from prometheus_client import multiprocess  # noqa: PLC0415  (after the env is set)

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
