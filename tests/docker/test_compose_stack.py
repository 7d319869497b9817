"""The composed stack, started exactly as a newcomer starts it: ``docker compose up``.

Needs a running Docker engine (``make docker-test``). Builds the image, brings up
db, migrate and api under a project name of its own on a free loopback port, checks
the order of start-up, the published service (through the post-deploy smoke test
too), the container's lockdown, limits and sizing, and a clean stop, then removes
everything, volumes included.

``DOCKER_TEST_IMAGE`` names an image built beforehand (the one CI is about to push,
or one built with BuildKit from another base, ``PYTHON_IMAGE``): it is tested as it
is, without building, and left in place.
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

from tests.support.accounts import token_on_server
from tests.support.dockerfile import pinned_base
from tests.support.gunicorn import free_port
from tests.support.journey import run_user_journey
from tests.support.paths import ROOT

# Building the image cold (base layers, pip downloads) can take minutes.
pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

PROJECT = f"fastapi-service-test-{uuid4().hex[:8]}"
PREBUILT_IMAGE = os.environ.get("DOCKER_TEST_IMAGE")
IMAGE = PREBUILT_IMAGE or f"{PROJECT}:test"
API_PORT = free_port()
STOP_GRACE_SECONDS = 50  # compose.yaml's stop_grace_period for api


def docker(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=check
    )


def compose(
    *args: str, timeout: float = 60, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "API_PORT": str(API_PORT), "APP_IMAGE": IMAGE}
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
    build = "--no-build" if PREBUILT_IMAGE else "--build"
    up = compose("up", "-d", build, "--wait", timeout=900, check=False)
    try:
        assert up.returncode == 0, up.stdout + up.stderr + compose("logs").stdout
        yield
    finally:
        compose("down", "-v", "--remove-orphans", timeout=120, check=False)
        if not PREBUILT_IMAGE:
            docker("image", "rm", IMAGE, check=False)


@pytest.fixture(scope="module")
def api_config() -> dict[str, Any]:
    """The api service as compose resolves it from compose.yaml, defaults filled in."""
    config: dict[str, Any] = json.loads(compose("config", "--format", "json").stdout)
    service: dict[str, Any] = config["services"]["api"]
    return service


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


def test_image_ships_no_compiler_and_no_pip() -> None:
    found = compose("exec", "-T", "api", "sh", "-c", "command -v gcc cc c++ pip pip3", check=False)
    assert found.stdout.strip() == ""
    importing = compose("exec", "-T", "api", "python", "-c", "import pip", check=False)
    assert "No module named 'pip'" in importing.stderr


def test_image_runs_the_python_of_its_pinned_base() -> None:
    """The Dockerfile's pin names the version; the lock files cover it (``make lock``)."""
    version = compose(
        "exec", "-T", "api", "python", "-c", "import sys; print(*sys.version_info[:2], sep='.')"
    )
    assert version.stdout.strip() == pinned_base().python


def test_nothing_secret_or_hidden_is_in_the_app_directory() -> None:
    found = compose(
        "exec",
        "-T",
        "api",
        "find",
        "/app",
        "-name",
        ".*",
        "-o",
        "-name",
        "*.pem",
        "-o",
        "-name",
        "*.key",
    )
    assert found.stdout.strip() == ""


def test_containers_get_the_limits_restarts_tmpfs_and_log_rotation_of_compose_yaml(
    api_config: dict[str, Any],
) -> None:
    api, migrate = inspect("api")["HostConfig"], inspect("migrate")["HostConfig"]
    limits = api_config["deploy"]["resources"]["limits"]
    assert api["Memory"] == int(limits["memory"]) > 0
    assert api["NanoCpus"] == int(float(limits["cpus"]) * 1e9) > 0
    assert api["RestartPolicy"]["Name"] == api_config["restart"] == "unless-stopped"
    assert migrate["RestartPolicy"]["Name"] == "no"
    (tmpfs,) = api_config["tmpfs"]
    mount, options = tmpfs.split(":", 1)
    assert api["Tmpfs"] == {mount: options}
    assert "size=" in options
    logging = api_config["logging"]
    assert api["LogConfig"] == {"Type": logging["driver"], "Config": logging["options"]}
    assert {"max-size", "max-file"} <= api["LogConfig"]["Config"].keys()


def test_boot_line_reports_the_explicit_workers_within_the_memory_limit(
    api_config: dict[str, Any],
) -> None:
    environment = api_config["environment"]
    memory_mb = int(api_config["deploy"]["resources"]["limits"]["memory"]) // 2**20
    assert int(environment["MEMORY_LIMIT_MB"]) == memory_mb
    lines = [
        json.loads(line)
        for line in compose("logs", "--no-log-prefix", "api").stdout.splitlines()
        if line
    ]
    (ready,) = [line for line in lines if line["event"] == "server ready"]
    assert ready["workers"] == int(environment["WEB_CONCURRENCY"])
    assert ready["memory_limit_mb"] == memory_mb
    assert ready["memory_estimate_mb"] < memory_mb
    assert not [line for line in lines if line["level"] == "warning" and "memory" in line["event"]]


def test_make_smoke_passes_against_the_stack_with_a_token() -> None:
    base_url = f"http://127.0.0.1:{API_PORT}"
    result = subprocess.run(
        ["make", "--no-print-directory", "smoke", f"URL={base_url}"],
        cwd=ROOT,
        env={**os.environ, "TOKEN": token_on_server(base_url)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    print(result.stdout)  # noqa: T201  (the smoke report, shown with -rP or -s)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok   endpoint   GET /api/v1/users/me 200 with the token" in result.stdout


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
