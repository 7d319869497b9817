"""What the builder receives: ``.dockerignore`` is an allow-list, checked by Docker itself.

A copy of the project, with stray secrets dropped where people leave them (``.env``
files, keys, certificates, inside ``app/`` too), is sent as a build context to a
``FROM scratch`` image that copies all of it; the image's file list is then exactly
the context. The Dockerfile can only ``COPY`` from the context, so what is not there
cannot be in the image either.
"""

import io
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from tests.support.paths import ROOT

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

STRAY_FILES = [
    ".env",
    ".env.production",
    "server.pem",
    "app/.env",
    "app/secrets.pem",
    "app/core/signing.key",
    "app/core/.credentials.json",
    "migrations/versions/.env",
    "requirements/dev-notes.txt",
]
# Everything the Dockerfile copies.
NEEDED = [
    "alembic.ini",
    "gunicorn.conf.py",
    "requirements/runtime.txt",
    "app/main.py",
    "app/core/config.py",
    "migrations/env.py",
    "migrations/script.py.mako",
]
ALLOWED_TOP_LEVEL = {"app", "migrations", "requirements", "alembic.ini", "gunicorn.conf.py"}
COPY_EVERYTHING = b"FROM scratch\nCOPY . /context/\n"


def docker(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(
        ["docker", *args], input=stdin, capture_output=True, timeout=240, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    return result


@pytest.fixture
def context_files(tmp_path: Path) -> Iterator[set[str]]:
    """The files Docker puts in the build context of a copy of the project with strays."""
    project = tmp_path / "project"
    shutil.copytree(
        ROOT,
        project,
        ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", ".*_cache"),
    )
    for stray in STRAY_FILES:
        (project / stray).write_text("stray\n")
    image = f"fastapi-service-context-{uuid4().hex[:8]}"
    docker("build", "--quiet", "--tag", image, "--file", "-", str(project), stdin=COPY_EVERYTHING)
    container = docker("create", image, "/nothing").stdout.decode().strip()
    try:
        exported = docker("export", container).stdout
        with tarfile.open(fileobj=io.BytesIO(exported)) as archive:
            yield {
                member.name.removeprefix("context/")
                for member in archive.getmembers()
                if member.isfile() and member.name.startswith("context/")
            }
    finally:
        docker("rm", container)
        docker("image", "rm", image)


def test_only_what_the_image_needs_reaches_the_builder(context_files: set[str]) -> None:
    assert set(NEEDED) <= context_files
    assert {name.split("/")[0] for name in context_files} == ALLOWED_TOP_LEVEL
    assert [name for name in context_files if name.startswith("requirements/")] == [
        "requirements/runtime.txt"
    ]


def test_stray_secrets_never_reach_the_builder(context_files: set[str]) -> None:
    assert not set(STRAY_FILES) & context_files
    hidden_or_keys = [
        name
        for name in context_files
        if any(part.startswith(".") for part in name.split("/")) or name.endswith((".pem", ".key"))
    ]
    assert hidden_or_keys == []
    assert not [name for name in context_files if "__pycache__" in name or name.endswith(".pyc")]
