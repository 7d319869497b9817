"""The composed stack, started exactly as a newcomer starts it: ``docker compose up``.

Needs a running Docker engine (``make docker-test``). Builds the image, brings up
db, migrate and api under a project name of its own on a free loopback port, checks
the order of start-up, the published service, the container's lockdown and a clean
stop, then removes everything, volumes included.
"""

import json
import os
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from uuid import uuid4

import httpx
import pytest

from tests.support.gunicorn import free_port
from tests.support.journey import run_user_journey
from tests.support.paths import ROOT

# Building the image cold (base layers, pip downloads) can take minutes.
pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

PROJECT = f"fastapi-service-test-{uuid4().hex[:8]}"
API_PORT = free_port()
STOP_GRACE_SECONDS = 50  # compose.yaml's stop_grace_period for api


def docker(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=check
    )


def compose(
    *args: str, timeout: float = 60, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "API_PORT": str(API_PORT), "APP_IMAGE": f"{PROJECT}:test"}
    return subprocess.run(
        ["docker", "compose", "-p", PROJECT, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


def inspect(service: str) -> dict[str, Any]:
    container_id = compose("ps", "--all", "-q", service).stdout.strip()
    details: list[dict[str, Any]] = json.loads(docker("inspect", container_id).stdout)
    return details[0]


def timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value[:26].rstrip("Z") + "+00:00")


@pytest.fixture(scope="module", autouse=True)
def stack() -> Iterator[None]:
    try:
        engine = docker("info", "--format", "{{.ServerVersion}}", timeout=20, check=False)
    except FileNotFoundError:
        pytest.fail("make docker-test needs the docker CLI and a running Docker engine")
    if engine.returncode != 0:
        pytest.fail(f"No Docker engine answers (`docker info` failed): {engine.stderr.strip()}")
    up = compose("up", "-d", "--build", "--wait", timeout=900, check=False)
    try:
        assert up.returncode == 0, up.stdout + up.stderr + compose("logs").stdout
        yield
    finally:
        compose("down", "-v", "--remove-orphans", timeout=120, check=False)
        docker("image", "rm", f"{PROJECT}:test", check=False)


def test_migration_job_succeeded_before_the_api_started() -> None:
    migrate, api = inspect("migrate"), inspect("api")
    assert migrate["State"]["Status"] == "exited"
    assert migrate["State"]["ExitCode"] == 0
    assert timestamp(migrate["State"]["FinishedAt"]) <= timestamp(api["State"]["StartedAt"])


def test_published_port_serves_ready() -> None:
    response = httpx.get(f"http://127.0.0.1:{API_PORT}/ready", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok"}}


def test_a_user_journey_works_through_the_published_port() -> None:
    run_user_journey(f"http://127.0.0.1:{API_PORT}")


def test_api_runs_as_non_root_on_a_read_only_root_filesystem() -> None:
    api = inspect("api")
    assert api["Config"]["User"] == "10001:10001"
    assert api["HostConfig"]["ReadonlyRootfs"] is True
    assert compose("exec", "-T", "api", "id", "-u").stdout.strip() == "10001"
    assert compose("exec", "-T", "api", "touch", "/app/written", check=False).returncode != 0
    assert compose("exec", "-T", "api", "touch", "/tmp/written", check=False).returncode == 0


def test_image_ships_no_compiler() -> None:
    found = compose("exec", "-T", "api", "sh", "-c", "command -v gcc cc c++", check=False)
    assert found.stdout.strip() == ""


def test_every_api_log_line_is_json() -> None:
    lines = [line for line in compose("logs", "--no-log-prefix", "api").stdout.splitlines() if line]
    assert lines
    assert all(isinstance(json.loads(line), dict) for line in lines)


def test_docker_stop_is_graceful_and_exits_zero() -> None:
    started = time.monotonic()
    compose("stop", "api", timeout=STOP_GRACE_SECONDS + 30)
    elapsed = time.monotonic() - started
    state = inspect("api")["State"]
    assert state["ExitCode"] == 0, state
    assert elapsed < STOP_GRACE_SECONDS
