"""Prometheus metrics under real gunicorn: their own listener, sums across workers, cleanup.

The server runs with its metrics directory under the test's control, so the test can
also see which workers wrote samples and that a dead worker's live gauges are removed.
Scrapes go to the metrics listener (``METRICS_PORT``); the API's port has no ``/metrics``.
"""

import asyncio
import json
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml

from app.db.database import Database
from app.db.engine import create_engine
from app.ops.metrics import Metrics
from tests.support.clients import app_client, metrics_url
from tests.support.database import database_behind_proxy, fetch_column
from tests.support.gunicorn import TEST_APP, GunicornServer, production_env
from tests.support.paths import ROOT
from tests.support.settings import make_settings

WORKERS = 3
POOL_SIZE = 4


@pytest.fixture(scope="module")
def metrics_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("metrics")
    (directory / "counter_999999.db").write_bytes(b"stale")  # a previous run's leftovers
    return directory


@pytest.fixture(scope="module")
def server(database_url: str, metrics_dir: Path) -> Iterator[GunicornServer]:
    env = production_env(
        database_url,
        WEB_CONCURRENCY=str(WORKERS),
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        APP_VERSION="1.2.3",
        GIT_SHA="abc1234",
        DB_POOL_SIZE=str(POOL_SIZE),
        DOCS_ENABLED="true",  # the schema is a plain Starlette route, labelled too
    )
    with GunicornServer(env, app="tests.apps:create_test_app()") as running:
        yield running


def scrape(server: GunicornServer) -> str:
    response = httpx.get(server.metrics_url)  # a new connection: any worker may answer
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one series; fails if it is absent."""
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:{{(.*)}})? (\S+)", line)
        if match and dict(re.findall(r'(\w+)="([^"]*)"', match[1] or "")) == labels:
            return float(match[2])
    raise AssertionError(f"no sample {name}{labels}")


def worker_pids(metrics_dir: Path) -> set[int]:
    return {int(path.stem.rsplit("_", 1)[1]) for path in metrics_dir.glob("counter_*.db")}


@pytest.mark.usefixtures("server")
def test_stale_files_are_removed_at_start(metrics_dir: Path) -> None:
    assert not (metrics_dir / "counter_999999.db").exists()


def test_counter_sums_requests_over_all_workers(server: GunicornServer, metrics_dir: Path) -> None:
    def hit(_: int) -> int:
        return httpx.get(f"{server.base_url}/test/block").status_code  # a new connection each

    blocking = {"method": "GET", "route": "/test/block"}
    assert hit(0) == 200  # so the series exists before the run
    before = scrape(server)
    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(hit, range(300)))
    assert statuses == [200] * 300
    assert len(worker_pids(metrics_dir)) >= 2, sorted(metrics_dir.iterdir())  # really spread

    # Several scrapes on new connections, so more than one worker answers: each sums all.
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        scrapes = list(pool.map(lambda _: scrape(server), range(WORKERS * 3)))
    for after in scrapes:
        for name, labels in (
            ("http_requests_total", {**blocking, "status_class": "2xx"}),
            ("http_request_duration_seconds_count", blocking),
        ):
            assert sample(after, name, **labels) - sample(before, name, **labels) == 300


def test_routes_are_labelled_by_template_and_unmatched_paths_share_one_label(
    server: GunicornServer,
) -> None:
    for number in (1, 2, 3):
        assert httpx.get(f"{server.base_url}/test/numbered/{number}").status_code == 200
    for path in ("/nope/1", "/nope/2"):
        assert httpx.get(f"{server.base_url}{path}").status_code == 404
    assert httpx.get(f"{server.base_url}/openapi.json").status_code == 200

    text = scrape(server)
    labels = {"method": "GET", "route": "/test/numbered/{number}", "status_class": "2xx"}
    assert sample(text, "http_requests_total", **labels) == 3
    assert (
        sample(text, "http_requests_total", method="GET", route="unmatched", status_class="4xx")
        == 2
    )
    schema = {"method": "GET", "route": "/openapi.json", "status_class": "2xx"}
    assert sample(text, "http_requests_total", **schema) == 1
    assert "/test/numbered/1" not in text
    assert "/nope" not in text


def test_metrics_are_served_on_their_own_listener_and_nowhere_else(
    server: GunicornServer,
) -> None:
    unknown = httpx.get(f"{server.base_url}/nope")
    for method in ("GET", "HEAD", "POST"):
        on_api = httpx.request(method, f"{server.base_url}/metrics")
        assert on_api.status_code == 404, method
    on_api = httpx.get(f"{server.base_url}/metrics")
    assert on_api.headers["content-type"] == "application/problem+json"
    assert {**on_api.json(), "instance": None, "request_id": None} == {
        **unknown.json(),
        "instance": None,
        "request_id": None,
    }
    assert "app_build_info" not in on_api.text

    listener = server.metrics_url.removesuffix("/metrics")
    for method, path in [
        ("GET", "/health"),
        ("GET", "/ready"),
        ("GET", "/api/v1/users/me"),
        ("GET", "/openapi.json"),
        ("GET", "/metrics/"),
        ("POST", "/metrics"),
        ("HEAD", "/metrics"),
    ]:
        response = httpx.request(method, f"{listener}{path}")
        assert response.status_code == 404, (method, path)
        if method != "HEAD":
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["status"] == 404
    assert "app_build_info" in scrape(server)


def test_pool_readiness_and_build_series_are_exported(server: GunicornServer) -> None:
    def read(_: int) -> int:
        return httpx.get(f"{server.base_url}/test/hold-connection?seconds=0.02").status_code

    # More reads at once than the workers' pools hold: some wait for a connection.
    with ThreadPoolExecutor(max_workers=WORKERS * POOL_SIZE * 2) as pool:
        assert set(pool.map(read, range(WORKERS * POOL_SIZE * 6))) == {200}
    text = scrape(server)
    assert sample(text, "db_pool_connections", state="size") == WORKERS * POOL_SIZE
    assert sample(text, "db_pool_connections", state="checked_out") == 0
    assert sample(text, "db_pool_connections", state="overflow") == 0
    assert sample(text, "app_build_info", version="1.2.3", git_sha="abc1234") == 1
    assert sample(text, "app_ready") == 1


def test_a_dead_workers_live_gauges_are_dropped(server: GunicornServer, metrics_dir: Path) -> None:
    for _ in range(10):
        assert httpx.get(f"{server.base_url}/health").status_code == 200
    victim = min(worker_pids(metrics_dir))
    assert (metrics_dir / f"gauge_livesum_{victim}.db").exists()
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while (metrics_dir / f"gauge_livesum_{victim}.db").exists():
        assert time.monotonic() < deadline, "gunicorn did not report the dead worker"
        time.sleep(0.1)
    # Scrapes are answered ahead of the request metrics: nothing is in progress.
    assert sample(scrape(server), "http_requests_in_progress") == 0


def wait_until_sleeping_in(database_url: str) -> None:
    """Until a session of the app runs ``pg_sleep`` in the test's database."""
    query = (
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND state = 'active' AND query LIKE 'SELECT pg_sleep%'"
    )
    deadline = time.monotonic() + 10
    while not asyncio.run(fetch_column(database_url, query)):
        assert time.monotonic() < deadline, "the request never reached the database"
        time.sleep(0.02)


def test_idle_pool_reads_zero_after_failed_connections(database_url: str) -> None:
    """One worker, so both kinds of failed connection meet the requests around them.

    A connection reset while pooled: the read that meets it is retried, its reconnect is
    refused, and SQLAlchemy checks in a connection it never handed out. A connect that
    hangs while another connection is returned, then times out: the pool counted it at
    that return, and nothing is reported when it fails. The cached readiness verdict
    keeps the scrapes themselves from touching the pool.
    """
    with database_behind_proxy(database_url) as (proxy, proxied_url):
        env = production_env(
            proxied_url,
            DB_POOL_SIZE="2",
            DB_CONNECT_TIMEOUT="2",
            READY_CACHE_SECONDS="30",
        )
        with GunicornServer(env, app=TEST_APP) as server:

            def read(seconds: float = 0) -> int:
                url = f"{server.base_url}/test/hold-connection?seconds={seconds}"
                return httpx.get(url, timeout=10).status_code

            assert httpx.get(f"{server.base_url}/ready").status_code == 200
            assert read() == 200
            proxy.reset()
            assert read() == 503
            proxy.restore()
            assert read() == 200

            held: list[int] = []
            holder = threading.Thread(target=lambda: held.append(read(seconds=1)))
            holder.start()
            wait_until_sleeping_in(database_url)  # the holder has the pool's one connection
            proxy.stall_new()
            assert read() == 503  # its connect hangs (2 s); the holder returns meanwhile
            holder.join()
            assert held == [200]
            proxy.restore()

            text = scrape(server)
            assert sample(text, "db_pool_connections", state="checked_out") == 0
            assert sample(text, "db_pool_connections", state="overflow") == 0
            assert read() == 200
            assert sample(scrape(server), "db_pool_connections", state="checked_out") == 0


def test_metrics_off_means_no_listener_and_no_metrics(database_url: str) -> None:
    for enabled in ("false", "true"):
        env = production_env(database_url, METRICS_ENABLED=enabled)
        with GunicornServer(env) as server:
            ready = next(json.loads(line) for line in server.lines if '"server ready"' in line)
            api = f"127.0.0.1:{server.port}"
            if enabled == "true":
                assert ready["bind"] == [api, f"127.0.0.1:{server.metrics_port}"]
                assert httpx.get(server.metrics_url).status_code == 200
            else:
                assert ready["bind"] == [api]
                with pytest.raises(httpx.ConnectError):
                    httpx.get(server.metrics_url)
            assert httpx.get(f"{server.base_url}/metrics").status_code == 404


pytestmark_anyio = pytest.mark.anyio


@pytestmark_anyio
async def test_pool_gauge_survives_the_engine_being_disposed(database_url: str) -> None:
    """``dispose()`` (as at shutdown) swaps the pool; the gauges must follow the new one."""
    metrics = Metrics()
    engine = create_engine(make_settings(database_url))
    metrics.watch_pool(engine, pool_size=10)
    database = Database(engine)
    try:
        await database.ping()
        await engine.dispose()
        await database.ping()
        text = bytes(metrics.render().body).decode()
    finally:
        await engine.dispose()
    assert sample(text, "db_pool_connections", state="checked_out") == 0


@pytestmark_anyio
async def test_metrics_can_be_turned_off_and_stay_out_of_the_api(database_url: str) -> None:
    settings = make_settings(database_url, metrics_enabled=False)
    async with app_client(settings) as client:
        assert (await client.get(metrics_url(settings))).status_code == 404
        assert (await client.get("/metrics")).status_code == 404
    settings = make_settings(database_url)
    async with app_client(settings) as client:
        assert (await client.get(metrics_url(settings))).status_code == 200
        assert (await client.get("/metrics")).status_code == 404
        assert "/metrics" not in (await client.get("/openapi.json")).json()["paths"]


@pytestmark_anyio
async def test_example_alert_rules_only_use_exported_series(database_url: str) -> None:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yaml").read_text())
    expressions = " ".join(rule["expr"] for rule in rules["groups"][0]["rules"])
    used = set(re.findall(r"\b((?:http|db|app)_[a-z_]+)\b", expressions))
    settings = make_settings(database_url)
    async with app_client(settings) as client:
        await client.get("/test/ok")  # request series exist once a request was served
        exported = (await client.get(metrics_url(settings))).text
    assert used
    for name in used:
        assert re.search(rf"^{name}[{{ ]", exported, re.MULTILINE), name
