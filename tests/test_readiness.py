"""Readiness: the database check, its deadline, shared runs, caching and draining."""

import asyncio
import signal
import socket
import threading
import time
from collections.abc import AsyncIterator
from types import FrameType
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.database import Database
from app.db.engine import create_engine
from app.ops.draining import drain_on_sigterm
from app.ops.readiness import ReadinessProbe, ReadinessReport
from tests.support.clients import app_client
from tests.support.database import database_behind_proxy
from tests.support.settings import make_settings

pytestmark = pytest.mark.anyio


async def test_health_is_ok_without_touching_anything(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_reports_the_database_check(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok"}}
    assert response.headers["cache-control"] == "no-store"


async def test_probes_answer_head_with_the_get_headers_and_no_body(
    client: httpx.AsyncClient,
) -> None:
    """Some load balancers check health with HEAD."""
    for path in ("/health", "/ready"):
        get, head = await client.get(path), await client.head(path)
        assert head.status_code == get.status_code == 200
        assert head.content == b""
        assert head.headers["content-length"] == str(len(get.content))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(make_settings(database_url))
    yield engine
    await engine.dispose()


def count_checkouts(engine: AsyncEngine) -> list[int]:
    """Count real pool checkouts through SQLAlchemy's own event hook."""
    checkouts = [0]

    def on_checkout(*_: Any) -> None:
        checkouts[0] += 1

    event.listen(engine.sync_engine, "checkout", on_checkout)
    return checkouts


async def test_concurrent_probes_share_one_database_check(engine: AsyncEngine) -> None:
    probe = ReadinessProbe({"database": Database(engine).ping}, timeout=1.0, cache_seconds=0.5)
    checkouts = count_checkouts(engine)

    reports = await asyncio.gather(*(probe.check() for _ in range(50)))

    assert all(report.ready for report in reports)
    assert checkouts[0] == 1


async def test_every_check_must_pass_and_the_report_names_each(engine: AsyncEngine) -> None:
    async def cache_that_is_down() -> None:
        with socket.socket() as unused:  # a port nothing listens on
            unused.bind(("127.0.0.1", 0))
            port = unused.getsockname()[1]
        await asyncio.open_connection("127.0.0.1", port)

    database = Database(engine).ping
    probe = ReadinessProbe(
        {"database": database, "cache": cache_that_is_down}, timeout=1.0, cache_seconds=0
    )
    report = await probe.check()
    assert report == ReadinessReport(ready=False, checks={"database": "ok", "cache": "unavailable"})

    healthy = ReadinessProbe({"database": database}, timeout=1.0, cache_seconds=0)
    assert await healthy.check() == ReadinessReport(ready=True, checks={"database": "ok"})


async def test_result_is_reused_within_the_cache_window_then_refreshed(engine: AsyncEngine) -> None:
    probe = ReadinessProbe({"database": Database(engine).ping}, timeout=1.0, cache_seconds=0.3)
    checkouts = count_checkouts(engine)

    await probe.check()
    await probe.check()
    assert checkouts[0] == 1
    await asyncio.sleep(0.35)
    await probe.check()
    assert checkouts[0] == 2


async def test_unreachable_database_is_not_ready_within_the_deadline(database_url: str) -> None:
    with database_behind_proxy(database_url) as (proxy, url):
        engine = create_engine(make_settings(url))
        probe = ReadinessProbe({"database": Database(engine).ping}, timeout=0.5, cache_seconds=0)
        try:
            assert (await probe.check()).ready
            proxy.cut()
            started = time.monotonic()
            report = await probe.check()
            elapsed = time.monotonic() - started
            assert not report.ready
            assert report.checks == {"database": "timeout"}
            assert elapsed < 0.5 + 0.5
            proxy.restore()
            deadline = time.monotonic() + 10
            while not (await probe.check()).ready:
                assert time.monotonic() < deadline, "not ready 10 s after the database returned"
                await asyncio.sleep(0.1)
        finally:
            await engine.dispose()


async def test_sigterm_drains_then_hands_over_to_the_server_handler(database_url: str) -> None:
    """The real signal, delivered to this process, with a stand-in for uvicorn's handler."""
    received: list[int] = []

    def server_handler(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    previous = signal.signal(signal.SIGTERM, server_handler)
    try:
        settings = make_settings(database_url, shutdown_drain_seconds=0.3)
        async with app_client(settings) as client:
            assert (await client.get("/ready")).status_code == 200
            signal.raise_signal(signal.SIGTERM)
            draining = await client.get("/ready")
            health = await client.get("/health")
            handed_over_at_once = list(received)
            await asyncio.sleep(0.4)
            handed_over_after_drain = list(received)
        assert draining.status_code == 503
        assert draining.json() == {"status": "unavailable", "checks": {"shutdown": "draining"}}
        assert health.status_code == 200
        assert handed_over_at_once == []
        assert handed_over_after_drain == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) is server_handler  # restored at shutdown
    finally:
        signal.signal(signal.SIGTERM, previous)


async def test_sigterm_in_the_middle_of_a_locked_write_does_not_hang_the_worker(
    engine: AsyncEngine,
) -> None:
    """The signal lands while this thread holds a lock that the draining work takes too.

    As the logger and the metrics files do: their locks are not reentrant, so a handler
    that took one itself would wait forever on the very code it interrupted.
    """
    held = threading.Lock()
    acquired: list[bool] = []

    def record_verdict(_ready: bool) -> None:
        acquired.append(held.acquire(timeout=1))  # times out, rather than hangs, if it must wait
        held.release()

    probe = ReadinessProbe(
        {"database": Database(engine).ping}, timeout=1.0, cache_seconds=0, on_result=record_verdict
    )
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    restore = drain_on_sigterm(probe, drain_seconds=0)
    try:
        with held:
            signal.raise_signal(signal.SIGTERM)
        report = await probe.check()
    finally:
        restore()
        signal.signal(signal.SIGTERM, previous)
    assert not report.ready
    assert acquired == [True]  # the verdict was recorded, and not from inside the handler
