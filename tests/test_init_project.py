"""``make init`` on copies of the repository: renamed, without the example, refused.

Each copy holds the files git knows (committed or not yet, never ignored ones), so it is
what a fresh clone holds. ``make init`` runs there with this interpreter as ``PYTHON``
(the script needs nothing else), and the copy's own tests run against the real
PostgreSQL: a fast subset that covers settings, accounts and tokens, the manifests,
the README's references and, without the example, the migrations from an empty
database to ``alembic check``.
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.paths import ROOT

NAME = "orders-service"
TEMPLATE = "fastapi-service"
TEMPLATE_WORD = re.compile(r"(?<![A-Za-z0-9_])fastapi[-_]service")
SCRIPT = "scripts/init_project.py"
# What refers to the example resource: its package, routes, model, table and indexes.
EXAMPLE_REFERENCE = re.compile(
    r"app[./]items|/items\b|\bItems?(Create|Read|Update)?\b|items_router|\"items\"|_items_"
)
EXAMPLE_MARKER = re.compile(r"(#|<!--)\s*example:" + "items")
EXAMPLE_FILES = ("app/items", "tests/test_items.py", "tests/test_idempotency.py", "bench")
SKIPPED = {".git", ".venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}

RENAMED_SUBSET = (
    "tests/test_config.py",
    "tests/test_users_auth.py",
    "tests/test_deploy_manifests.py",
    "tests/test_items.py",
    "tests/test_documentation.py",
)
WITHOUT_EXAMPLE_SUBSET = (
    "tests/test_config.py",
    "tests/test_users_auth.py",
    "tests/test_deploy_manifests.py",
    "tests/test_migrations.py",
    "tests/test_routing.py",
    "tests/test_documentation.py",
)


def copy_of_the_repository(destination: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file() and not source.is_symlink():  # not deleted since, not .venv
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def make_init(tree: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "init", f"PYTHON={sys.executable}", *arguments],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def files(tree: Path) -> Iterator[Path]:
    for directory, subdirectories, names in os.walk(tree):
        subdirectories[:] = [name for name in subdirectories if name not in SKIPPED]
        yield from (Path(directory) / name for name in names)


def fingerprint(tree: Path) -> dict[str, str]:
    """Every file's path, mode and contents (caches aside): equal only for equal trees."""
    return {
        str(path.relative_to(tree)): f"{path.stat().st_mode:o}:"
        + hashlib.sha256(path.read_bytes()).hexdigest()
        for path in files(tree)
    }


def texts(tree: Path, *, under: str = "") -> dict[str, str]:
    """The project's text files under a folder of the tree, by path (not the script)."""
    found = {}
    for path in files(tree / under):
        relative = str(path.relative_to(tree))
        if relative != SCRIPT and not path.name.startswith(".env"):
            try:
                found[relative] = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
    return found


def run_tests(tree: Path, paths: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    """The copy's own tests, with its own conftest: a throwaway database of their own."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *paths],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def secret_in(env_file: Path) -> str:
    match = re.search(r"^JWT_SECRET_KEY=(.*)$", env_file.read_text(), re.MULTILINE)
    assert match is not None, env_file.read_text()
    return match[1]


@pytest.fixture(scope="module")
def renamed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = copy_of_the_repository(tmp_path_factory.mktemp("renamed"))
    result = make_init(tree, f"NAME={NAME}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Renamed {TEMPLATE} to {NAME}." in result.stdout
    return tree


@pytest.fixture(scope="module")
def without_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = copy_of_the_repository(tmp_path_factory.mktemp("without-example"))
    result = make_init(tree, f"NAME={NAME}", "EXAMPLE=no")
    assert result.returncode == 0, result.stdout + result.stderr
    return tree


def test_the_template_names_the_service_and_the_example_where_this_test_looks() -> None:
    """Otherwise the checks below would pass on a tree that had nothing to change."""
    before = texts(ROOT)
    assert sum(bool(TEMPLATE_WORD.search(text)) for text in before.values()) >= 20
    assert any(EXAMPLE_REFERENCE.search(text) for path, text in before.items() if "app/" in path)
    assert any(EXAMPLE_MARKER.search(text) for text in before.values())


def test_the_old_name_is_gone_and_the_new_one_is_where_it_was(renamed: Path) -> None:
    left = sorted(path for path, text in texts(renamed).items() if TEMPLATE_WORD.search(text))
    assert left == []

    pyproject = (renamed / "pyproject.toml").read_text()
    assert f'\nname = "{NAME}"\n' in pyproject
    assert re.search(rf'^description = "The {NAME} service', pyproject, re.MULTILINE)
    config = (renamed / "app/core/config.py").read_text()
    assert config.count(f'default="{NAME}"') == 3  # APP_NAME, JWT_ISSUER, JWT_AUDIENCE
    example = (renamed / ".env.example").read_text()
    for variable in ("APP_NAME", "JWT_ISSUER", "JWT_AUDIENCE"):
        assert f"\n{variable}={NAME}\n" in example
    compose = (renamed / "compose.yaml").read_text()
    assert f"\nname: {NAME}\n" in compose
    assert f"{NAME}:dev" in compose
    # Every label naming an app names this one, but for the peers the NetworkPolicy lets in.
    peers = {"ingress-nginx"}
    for manifest in (renamed / "deploy/kubernetes").rglob("*.yaml"):
        for label in re.findall(
            r"app\.kubernetes\.io/(?:name|part-of): (\S+)", manifest.read_text()
        ):
            assert label in {NAME, *peers}, manifest
    assert f'job="{NAME}"' in (renamed / "deploy/prometheus/alerts.yaml").read_text()
    assert (renamed / "README.md").read_text().startswith(f"# {NAME}\n")
    lock = (renamed / "requirements/dev.txt").read_text()
    assert f"# via {NAME} (pyproject.toml:dev)" in lock
    original_lock = (ROOT / "requirements/dev.txt").read_text()
    assert re.findall(r"--hash=\S+", lock) == re.findall(r"--hash=\S+", original_lock)
    # The template's test of this rename has nothing to rename in a renamed tree.
    assert not (renamed / "tests/test_init_project.py").exists()
    assert (renamed / "app/items").is_dir()


def test_a_local_env_holds_a_fresh_development_secret(renamed: Path, without_example: Path) -> None:
    secrets = [secret_in(tree / ".env") for tree in (renamed, without_example)]
    assert all(re.fullmatch(r"[0-9a-f]{64}", secret) for secret in secrets)
    assert secrets[0] != secrets[1]
    assert (renamed / ".env").stat().st_mode & 0o777 == 0o600
    assert ".env" in (renamed / ".gitignore").read_text().splitlines()


def test_running_it_again_changes_nothing_and_keeps_the_env(
    renamed: Path, without_example: Path
) -> None:
    for tree, arguments in ((renamed, ()), (without_example, ("EXAMPLE=no",))):
        before = fingerprint(tree)
        result = make_init(tree, f"NAME={NAME}", *arguments)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"Nothing to change: the project is already {NAME}." in result.stdout
        assert fingerprint(tree) == before


def test_a_renamed_project_refuses_another_name(renamed: Path) -> None:
    before = fingerprint(renamed)
    result = make_init(renamed, "NAME=payments-service")
    assert result.returncode != 0
    assert f"already named '{NAME}'" in result.stderr
    assert fingerprint(renamed) == before


@pytest.mark.timeout(300)
def test_the_renamed_project_passes_its_tests(renamed: Path) -> None:
    result = run_tests(renamed, RENAMED_SUBSET)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]


def test_without_the_example_nothing_of_it_is_left(without_example: Path) -> None:
    for path in EXAMPLE_FILES:
        assert not (without_example / path).exists(), path
    migrations = sorted(p.name for p in (without_example / "migrations/versions").glob("*.py"))
    assert not [name for name in migrations if "item" in name]
    code = texts(without_example, under="app") | texts(without_example, under="migrations")
    assert sorted(path for path, text in code.items() if EXAMPLE_REFERENCE.search(text)) == []
    everywhere = texts(without_example)
    assert sorted(path for path, text in everywhere.items() if EXAMPLE_MARKER.search(text)) == []
    for document in ("README.md", "docs/architecture.md", "docs/adding-a-resource.md"):
        assert not re.search(r"app/items|/items\b|make bench", everywhere[document]), document
    assert "\nbench:" not in everywhere["Makefile"]


def test_without_the_example_the_code_stays_lint_clean(without_example: Path) -> None:
    ruff = str(Path(sys.executable).parent / "ruff")
    for command in (
        (ruff, "check", "--no-cache", "."),
        (ruff, "format", "--check", "--no-cache", "."),
    ):
        result = subprocess.run(
            command, cwd=without_example, capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(300)
def test_the_project_without_the_example_migrates_and_passes_its_tests(
    without_example: Path,
) -> None:
    result = run_tests(without_example, WITHOUT_EXAMPLE_SUBSET)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]


@pytest.mark.parametrize(
    "arguments",
    [
        ("NAME=Not_A_DNS_Label!",),
        ("NAME=",),
        ("NAME=-orders",),
        ("NAME=orders-",),
        ("NAME=9orders",),
        (f"NAME={'a' * 54}",),
        (f"NAME={NAME}", "EXAMPLE=maybe"),
    ],
)
def test_a_refused_name_changes_nothing(tmp_path: Path, arguments: tuple[str, ...]) -> None:
    tree = copy_of_the_repository(tmp_path)
    before = fingerprint(tree)
    result = make_init(tree, *arguments)
    assert result.returncode != 0
    refusal = [line for line in result.stderr.splitlines() if line.startswith("make init: ")]
    assert len(refusal) == 1, result.stderr
    assert fingerprint(tree) == before
    assert not (tree / ".env").exists()
