"""The post-deploy smoke test (``scripts/smoke.py``, ``make smoke``) against real servers.

Healthy gunicorn servers must pass it, anonymously and with a token, with or without
the OpenAPI schema served; a bad token, a database that is down or nothing listening
must each fail it with one line naming the check. The script runs as it would on a
bastion host: ``-I -S`` gives it the standard library and nothing of this project.
"""

import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.support.accounts import token_on_server
from tests.support.gunicorn import GunicornServer, free_port, production_env
from tests.support.paths import ROOT
from tests.support.settings import FAST_PASSWORD_HASHING_ENV

SMOKE = ROOT / "scripts/smoke.py"
# One signing key for every server here, so a token from one is valid on the others.
JWT_SECRET = secrets.token_hex(32)


def smoke(url: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "SMOKE_TOKEN"}
    if token is not None:
        env["SMOKE_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-I", "-S", str(SMOKE), url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def make_smoke(*variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "smoke", *variables],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def the_failure(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed run prints on stderr."""
    assert result.returncode == 1, result.stdout + result.stderr
    (line,) = result.stderr.splitlines()
    return line


def service_env(database_url: str) -> dict[str, str]:
    # Docs served, as in staging: the key endpoints come from the schema.
    return production_env(
        database_url, JWT_SECRET_KEY=JWT_SECRET, DOCS_ENABLED="true", **FAST_PASSWORD_HASHING_ENV
    )


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[GunicornServer]:
    with GunicornServer(service_env(database_url)) as running:
        yield running


@pytest.fixture(scope="module")
def token(server: GunicornServer) -> str:
    return token_on_server(server.base_url)


def test_make_smoke_passes_a_healthy_service_check_by_check(server: GunicornServer) -> None:
    result = make_smoke(f"URL={server.base_url}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert all(line.startswith("ok ") for line in lines), lines
    checks = [line.split()[1] for line in lines]
    # One line per key endpoint (every GET without path parameters the schema declares).
    assert checks[:3] == ["health", "ready", "openapi"]
    assert checks[-2:] == ["request-id", "not-found"]
    endpoints = lines[3:-2]
    assert {line.split()[1] for line in endpoints} == {"endpoint"}
    assert f"{len(endpoints)} key endpoints" in lines[2]
    # Without a token, the secured endpoints must refuse with their declared 401.
    assert all("401 anonymous" in line for line in endpoints)
    assert any("GET /api/v1/users/me 401 anonymous" in line for line in endpoints)


def test_with_a_token_the_key_endpoints_answer_200(server: GunicornServer, token: str) -> None:
    result = make_smoke(f"URL={server.base_url}", f"TOKEN={token}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "GET /api/v1/users/me 200 with the token" in result.stdout
    assert "FAIL" not in result.stdout
    assert token not in result.stdout


def test_a_rejected_token_fails_on_the_first_key_endpoint(server: GunicornServer) -> None:
    result = smoke(server.base_url, token="not-a-valid-token")
    # The first key endpoint in the schema's order, whichever resource that is.
    assert re.fullmatch(r"FAIL endpoint: GET /api/v1/\S+: 401, expected 200", the_failure(result))
    assert "ok   openapi" in result.stdout


def test_a_service_whose_database_is_down_fails_at_ready() -> None:
    unreachable = f"postgresql://app:secret@127.0.0.1:{free_port()}/app"
    with GunicornServer(service_env(unreachable)) as server:
        result = smoke(server.base_url)
    assert the_failure(result) == "FAIL ready: GET /ready: 503, expected 200"
    assert result.stdout.startswith("ok   health")


def test_nothing_listening_fails_at_health() -> None:
    failure = the_failure(smoke(f"http://127.0.0.1:{free_port()}"))
    assert failure.startswith("FAIL health: GET /health: cannot connect (")


def test_without_a_schema_the_built_in_key_endpoints_are_checked(
    database_url: str, token: str
) -> None:
    app = "tests.apps:create_app_without_schema()"
    with GunicornServer(service_env(database_url), app=app) as server:
        assert httpx.get(f"{server.base_url}/openapi.json").status_code == 404
        result = smoke(server.base_url, token=token)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "GET /openapi.json 404: not served, using the built-in list" in result.stdout
    assert "GET /api/v1/users/me 200 with the token" in result.stdout


def test_make_smoke_without_a_url_refuses_in_one_line() -> None:
    result = make_smoke()
    assert result.returncode == 2
    assert result.stdout.splitlines() == [
        "make smoke needs URL=<the service's base URL>, e.g. make smoke URL=https://api.example.com"
    ]
