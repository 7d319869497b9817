"""The repository's own upkeep works: CI, pre-commit, file hygiene, k8s-check, fastapi-cli.

The workflow cannot run here, so what it relies on is checked instead: every make
target it calls exists, its services are where the suite looks, and its Python matrix
spans the versions the project supports. pre-commit runs for real, offline, with the
same commands as ``make lint``; ``make k8s-check`` renders and validates real overlays
and fails on broken ones; ``fastapi run`` serves the app from the pyproject entrypoint.
"""

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy.engine import make_url

from tests.support.database import DEFAULT_SERVER_URL
from tests.support.gunicorn import GunicornServer, production_env
from tests.support.paths import BIN, ROOT
from tests.support.settings import TEST_REDIS_URL
from tests.test_deploy_manifests import KUBERNETES_VERSION

WORKFLOW = ROOT / ".github/workflows/ci.yml"
CHECK_FILES = ROOT / "scripts/check_files.py"
SCAN_INSTALLED = ".venv-scan/.installed"  # the Makefile's $(SCAN_INSTALLED)


def make(*arguments: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """The Makefile's target, with this venv's tools and without reinstalling them."""
    makefile = str(ROOT / "Makefile")
    return subprocess.run(
        ["make", "--no-print-directory", "-f", makefile, "-o", "install", f"BIN={BIN}", *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def workflow() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z0-9-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))


def lint_commands() -> list[str]:
    """What ``make lint`` runs, with the tools' directory written as ``.venv/bin``.

    Installing the scanner's venv is not a check: on a fresh machine ``make -n`` would
    print its recipe too, so it counts as done here.
    """
    printed = make("-n", "-o", SCAN_INSTALLED, "lint").stdout.splitlines()
    return [line.replace(f"{BIN}/", ".venv/bin/") for line in printed]


def hook_entries() -> list[str]:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"]  # nothing to download
    return [hook["entry"] for hook in config["repos"][0]["hooks"]]


def test_every_make_target_the_workflow_runs_exists() -> None:
    runs = [
        step["run"] for job in workflow()["jobs"].values() for step in job["steps"] if "run" in step
    ]
    action = yaml.safe_load((ROOT / ".github/actions/venv/action.yml").read_text())
    runs += [step["run"] for step in action["runs"]["steps"] if "run" in step]
    called = {word for run in runs for word in re.findall(r"\bmake ([a-z0-9-]+)", run)}
    assert called >= {"install", "test", "lint", "docker-test", "k8s-check"}
    assert called <= make_targets()


def test_the_workflow_is_read_only_bounded_and_covers_the_supported_pythons() -> None:
    loaded = workflow()
    assert loaded["permissions"] == {"contents": "read"}
    assert all(job["timeout-minutes"] <= 60 for job in loaded["jobs"].values())
    minimum = re.search(r'requires-python = ">=(\d+\.\d+)"', (ROOT / "pyproject.toml").read_text())
    image = re.search(r"^FROM python:(\d+\.\d+)-slim@", (ROOT / "Dockerfile").read_text(), re.M)
    assert minimum is not None
    assert image is not None
    assert {minimum[1], image[1]} <= set(loaded["jobs"]["test"]["strategy"]["matrix"]["python"])


def test_the_test_job_serves_postgres_and_redis_where_the_suite_looks() -> None:
    job = workflow()["jobs"]["test"]
    database = make_url(job["env"]["TEST_DATABASE_URL"])
    assert database == make_url(DEFAULT_SERVER_URL)  # the suite's default, made explicit
    redis = make_url(TEST_REDIS_URL)
    services = job["services"]
    assert f"{database.port}:5432" in services["postgres"]["ports"]
    assert services["postgres"]["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"  # no password
    assert f"{redis.port}:6379" in services["redis"]["ports"]


def test_pre_commit_hooks_are_the_commands_of_make_lint() -> None:
    commands, entries = lint_commands(), hook_entries()
    # A hook is given file names where make names them itself: its entry is a prefix.
    for entry in entries:
        assert any(command.startswith(entry) for command in commands), entry
    for command in commands:
        assert any(command.startswith(entry) for entry in entries), command


@pytest.mark.timeout(300)  # mypy over the whole project, cold in a fresh clone
def test_pre_commit_passes_offline_on_every_tracked_file(tmp_path: Path) -> None:
    # The hooks use the tools make installs; the scanner's own venv, as `make lint` would.
    installed = make(SCAN_INSTALLED)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    home = tmp_path / "pre-commit"
    result = subprocess.run(
        [str(BIN / "pre-commit"), "run", "--all-files", "--show-diff-on-failure"],
        cwd=ROOT,
        env={**os.environ, "PRE_COMMIT_HOME": str(home)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    passed = re.findall(r"\.\.\.+Passed$", result.stdout, re.MULTILINE)
    assert len(passed) == len(hook_entries())
    # No hook environment was built or repository cloned: nothing was downloaded.
    assert not [path for path in home.glob("*") if path.is_dir()]


def check_files(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECK_FILES), *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )


def written(directory: Path, files: dict[str, bytes]) -> list[Path]:
    """``files`` (name: content) written into ``directory``; their paths."""
    for name, content in files.items():
        (directory / name).write_bytes(content)
    return [directory / name for name in files]


def test_file_hygiene_passes_clean_files(tmp_path: Path) -> None:
    files = {
        "ok.py": b"x = 1\n",
        "manifests.yaml": b"kind: A\n---\nkind: B\n",
        "pyproject.toml": b'[project]\nname = "x"\n',
        "crlf.txt": b"windows\r\n",
        "empty.txt": b"",
        "image.png": b"\x89PNG\r\n\x00 \n\n",  # binary: no lines to judge
    }
    result = check_files(*written(tmp_path, files))
    assert (result.returncode, result.stderr) == (0, "")


def test_file_hygiene_reports_each_problem_with_its_place(tmp_path: Path) -> None:
    files = {
        "spaces.py": b"x = 1 \ny = 2\t\n",
        "unterminated.md": b"# Title",
        "trailing.md": b"text\n\n",
        "conflict.py": b"<<<<<<< HEAD\nx = 1\n=======\nx = 2\n>>>>>>> branch\n",
        "broken.yaml": b"key: [unclosed\n",
        "broken.toml": b"[table\n",
        "latin1.txt": b"caf\xe9\n",
        "big.txt": b"x\n" * (256 * 1024 + 1),
    }
    result = check_files(*written(tmp_path, files))
    assert result.returncode == 1
    problems = [line.removeprefix(f"{tmp_path}/") for line in result.stderr.splitlines()]
    assert problems[:6] == [
        "spaces.py:1: trailing whitespace",
        "spaces.py:2: trailing whitespace",
        "unterminated.md: no newline at the end of the file",
        "trailing.md: blank lines at the end of the file",
        "conflict.py:1: merge-conflict marker",
        "conflict.py:5: merge-conflict marker",
    ]
    assert problems[6].startswith("broken.yaml: does not parse: ")
    assert problems[7].startswith("broken.toml: does not parse: ")
    assert problems[8:] == [
        "latin1.txt: not UTF-8",
        "big.txt: 524290 bytes, over the 524288-byte limit for a committed file",
    ]


def test_k8s_check_validates_every_overlay_against_the_deploy_tests_version() -> None:
    assert f"KUBERNETES_VERSION := {KUBERNETES_VERSION}\n" in (ROOT / "Makefile").read_text()
    result = make("k8s-check")
    assert result.returncode == 0, result.stdout + result.stderr
    overlays = sorted(path.name for path in (ROOT / "deploy/kubernetes/overlays").iterdir())
    assert sorted(re.findall(r"overlays/([^/]+)/$", result.stdout, re.MULTILINE)) == overlays
    assert "passed for resource deployment/" in result.stdout


def only_overlay(root: Path, resources: list[str], files: dict[str, str]) -> None:
    """A repository at ``root`` whose one overlay lists ``resources``, for ``make k8s-check``."""
    directory = root / "deploy/kubernetes/overlays/only"
    directory.mkdir(parents=True)
    (directory / "kustomization.yaml").write_text(yaml.safe_dump({"resources": resources}))
    for name, text in files.items():
        (directory / name).write_text(text)


def test_k8s_check_fails_on_a_resource_kubernetes_would_refuse(tmp_path: Path) -> None:
    config_map = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndataz:\n  a: b\n"
    only_overlay(tmp_path, ["config.yaml"], {"config.yaml": config_map})
    result = make("k8s-check", cwd=tmp_path)
    assert result.returncode != 0
    assert "'dataz' was unexpected" in result.stdout


def test_k8s_check_fails_on_an_overlay_that_does_not_render(tmp_path: Path) -> None:
    only_overlay(tmp_path, ["gone.yaml"], {})
    result = make("k8s-check", cwd=tmp_path)
    assert result.returncode != 0
    assert "gone.yaml" in result.stderr


class FastAPIRun(GunicornServer):
    """``fastapi run`` (fastapi-cli) with no app named: it must find the pyproject entrypoint."""

    def command(self) -> list[str]:
        return [str(BIN / "fastapi"), "run", "--host", "127.0.0.1", "--port", str(self.port)]


def test_fastapi_run_serves_the_app_from_the_pyproject_entrypoint(database_url: str) -> None:
    server = FastAPIRun(production_env(database_url))
    with server:
        assert httpx.get(f"{server.base_url}/health", timeout=5).json() == {"status": "ok"}
        ready = httpx.get(f"{server.base_url}/ready", timeout=5)
        assert ready.json() == {"status": "ready", "checks": {"database": "ok"}}
    # The lifespan ran both ways (uvicorn then ends itself with the SIGTERM it was sent).
    assert "Application shutdown complete." in server.output
    assert "Using import string: app.main:create_app" in server.output
