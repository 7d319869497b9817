"""Prometheus metrics under real gunicorn: sums across workers, bounded labels, cleanup.

The server runs with its metrics directory under the test's control, so the test can
also see which workers wrote samples and that a dead worker's live gauges are removed.
"""

import os
import re
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.clients import app_client
from tests.support.gunicorn import GunicornServer, production_env
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
    )
    with GunicornServer(env, app="tests.apps:create_test_app()") as running:
        yield running


def scrape(server: GunicornServer) -> str:
    response = httpx.get(f"{server.base_url}/metrics")
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

    after = scrape(server)
    for name, labels in (
        ("http_requests_total", {**blocking, "status_class": "2xx"}),
        ("http_request_duration_seconds_count", blocking),
    ):
        assert sample(after, name, **labels) - sample(before, name, **labels) == 300


def test_routes_are_labelled_by_template_and_unmatched_paths_share_one_label(
    server: GunicornServer,
) -> None:
    for item_id in (1, 2, 3):
        assert httpx.get(f"{server.base_url}/api/v1/items/{item_id}").status_code == 401
    for path in ("/nope/1", "/nope/2"):
        assert httpx.get(f"{server.base_url}{path}").status_code == 404

    text = scrape(server)
    labels = {"method": "GET", "route": "/api/v1/items/{item_id}", "status_class": "4xx"}
    assert sample(text, "http_requests_total", **labels) == 3
    assert (
        sample(text, "http_requests_total", method="GET", route="unmatched", status_class="4xx")
        == 2
    )
    assert "/api/v1/items/1" not in text
    assert "/nope" not in text


def test_pool_readiness_and_build_series_are_exported(server: GunicornServer) -> None:
    for _ in range(WORKERS * 3):
        assert httpx.get(f"{server.base_url}/ready").status_code == 200
    text = scrape(server)
    assert sample(text, "db_pool_connections", state="size") == WORKERS * POOL_SIZE
    assert sample(text, "db_pool_connections", state="checked_out") == 0
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
    assert sample(scrape(server), "http_requests_in_progress") == 1  # just the scrape itself


pytestmark_anyio = pytest.mark.anyio


@pytestmark_anyio
async def test_metrics_can_be_turned_off_and_stay_out_of_the_api_schema(database_url: str) -> None:
    async with app_client(make_settings(database_url, metrics_enabled=False)) as client:
        assert (await client.get("/metrics")).status_code == 404
    async with app_client(make_settings(database_url)) as client:
        assert (await client.get("/metrics")).status_code == 200
        assert "/metrics" not in (await client.get("/openapi.json")).json()["paths"]


@pytestmark_anyio
async def test_example_alert_rules_only_use_exported_series(database_url: str) -> None:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yaml").read_text())
    expressions = " ".join(rule["expr"] for rule in rules["groups"][0]["rules"])
    used = set(re.findall(r"\b((?:http|db|app)_[a-z_]+)\b", expressions))
    async with app_client(make_settings(database_url)) as client:
        await client.get("/test/ok")  # request series exist once a request was served
        exported = (await client.get("/metrics")).text
    assert used
    for name in used:
        assert re.search(rf"^{name}[{{ ]", exported, re.MULTILINE), name
