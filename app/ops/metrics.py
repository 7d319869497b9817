"""Prometheus metrics that add up across gunicorn workers.

Each worker builds its ``Metrics`` in the lifespan, after gunicorn has forked: nothing
is created (no metric file written) when the app is imported.

Under gunicorn, each worker writes its samples to memory-mapped files in
``PROMETHEUS_MULTIPROC_DIR`` (set up by ``gunicorn.conf.py``), and a scrape answered
by any worker reads them all, so ``/metrics`` shows the sum over the workers. Without
that variable (``make dev``, in-process tests) the app keeps a registry of its own.

``/metrics`` is served on a listener of its own (``METRICS_PORT``, bound by gunicorn
beside the API), never on the API's port: the series name the build and every route,
which the public has no business reading. ``app.ops.probes`` hands that listener's
requests to ``serve_metrics_listener``.

Labels are bounded: routes are templates (``/api/v1/orders/{order_id}``), unmatched
paths share one label, and statuses are classes (``2xx``).
"""

import os
from http import HTTPStatus
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketClose

from app.core.errors import problem_response
from app.core.resources import Resource
from app.ops.readiness import READINESS_PROBE

METRICS_PATH = "/metrics"
UNMATCHED_ROUTE = "unmatched"
# Clients choose the method: anything else shares one label, so they cannot add series.
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_POOL_STATES = ("size", "checked_out", "overflow")
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def _multiprocess() -> bool:
    return "PROMETHEUS_MULTIPROC_DIR" in os.environ


class Metrics:
    """The service's series. One instance per app; cheap to record on the request path."""

    def __init__(self) -> None:
        # In multiprocess mode samples live in files, not in a registry.
        self.registry = None if _multiprocess() else CollectorRegistry()
        self.requests = Counter(
            "http_requests",
            "HTTP requests handled, by method, route template and status class.",
            ["method", "route", "status_class"],
            registry=self.registry,
        )
        self.rate_limit_store_errors = Counter(
            "rate_limit_store_errors",
            "Log-in and registration attempts let through because the rate limit store failed.",
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time from receiving a request to finishing its response.",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "http_requests_in_progress",
            "Requests being handled right now.",
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        self.db_pool = Gauge(
            "db_pool_connections",
            "Database pool connections: configured size, checked out, overflow in use.",
            ["state"],
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        self.ready = Gauge(
            "app_ready",
            "1 if the latest readiness verdict of any live worker was ready.",
            multiprocess_mode="livemostrecent",
            registry=self.registry,
        )
        # (method, route, status) -> its counter and histogram children: ``labels()``
        # costs more than the increments, so it runs once per key, not per request.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.build_info = Gauge(
            "app_build_info",
            "Always 1; the labels say which build is running.",
            ["version", "git_sha"],
            multiprocess_mode="max",
            registry=self.registry,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in _KNOWN_METHODS else "other"
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:  # first time for this key: resolve the labelled children once
            series = self._series[key] = (
                self.requests.labels(method, route, f"{status // 100}xx"),
                self.latency.labels(method, route),
            )
        counter, histogram = series
        counter.inc()
        histogram.observe(seconds)

    def watch_pool(self, engine: AsyncEngine, pool_size: int) -> None:
        """Keep this worker's pool gauges current from SQLAlchemy's pool events.

        A connection counts from its ``checkout`` to its ``checkin`` (or ``detach``),
        matched by its pool entry. SQLAlchemy also fires ``checkin`` for connections it
        never handed out (one that fails to reconnect or to answer its pre-ping during
        checkout): a plain tally of events went below zero on those. The pool's own
        count is no better: it includes connects in progress, so one that then fails
        (no event follows) left the gauge one too high while idle, and after
        ``engine.dispose()`` the listeners, which move to the new pool, read the old
        one's (-1). Entries lent and not yet back can neither drift nor go negative.
        """
        size, checked_out, overflow = (self.db_pool.labels(state) for state in _POOL_STATES)
        size.set(pool_size)
        lent: set[ConnectionPoolEntry] = set()
        overflow_seen = 0

        def record() -> None:
            nonlocal overflow_seen
            in_use = len(lent)
            checked_out.set(in_use)
            if (beyond := max(in_use - pool_size, 0)) != overflow_seen:
                overflow.set(beyond)
                overflow_seen = beyond

        def lend(_connection: object, entry: ConnectionPoolEntry, _proxy: object) -> None:
            lent.add(entry)
            record()

        def give_back(_connection: object, entry: ConnectionPoolEntry) -> None:
            if entry in lent:  # not for a checkin of a connection never handed out
                lent.remove(entry)
                record()

        pool = engine.sync_engine.pool
        event.listen(pool, "checkout", lend)
        event.listen(pool, "checkin", give_back)
        # Under an async driver, a connection garbage-collected unclosed is detached instead.
        event.listen(pool, "detach", give_back)

    def record_readiness(self, ready: bool) -> None:
        self.ready.set(1 if ready else 0)

    def render(self) -> Response:
        if self.registry is not None:
            return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


# None where METRICS_ENABLED is off: the middleware then records nothing at all.
METRICS = Resource[Metrics | None]("metrics")


async def serve_metrics_listener(scope: Scope, receive: Receive, send: Send) -> None:
    """Every request on the metrics listener: ``GET /metrics``, and a 404 for anything else.

    Nothing of the API is reachable here, and the API never serves ``/metrics``.
    """
    if scope["type"] != "http":
        await WebSocketClose()(scope, receive, send)
        return
    metrics = METRICS.of(scope)
    if metrics is None or scope["path"] != METRICS_PATH or scope["method"] != "GET":
        response: Response = problem_response(
            HTTPStatus.NOT_FOUND, HTTPStatus.NOT_FOUND.phrase, instance=scope["path"]
        )
    else:
        # A fresh (or at most READY_CACHE_SECONDS old) verdict for app_ready with every
        # scrape, whichever worker answers it.
        await READINESS_PROBE.of(scope).check()
        response = metrics.render()
    await response(scope, receive, send)
