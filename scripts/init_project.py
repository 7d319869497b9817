"""``make init NAME=orders-service [EXAMPLE=no]``: turn the template into a service of your own.

It renames the template's service name wherever it appears, writes a local ``.env`` with
a fresh development signing key, and with ``--example no`` removes the example ``items``
resource. Standard library only, so it runs before any virtualenv exists.

The whole change is planned in memory first and written only once it is known to apply:
a refused name, a tree already renamed or a broken marker leaves every file as it was.
The rename walks the tree (whatever files it holds) rather than a list of files, so
manifests added later are renamed too. The template's name is distinctive enough to
replace wherever it stands as a word; a service's own name may not be (``orders`` is also
a word in its code), which is why a renamed tree is never renamed again.

The example is removed by markers, so the passages that belong to it are marked where
they live: a line ending in the comment ``example:items`` goes, and so does everything
from a ``example:items:begin`` comment line to its ``example:items:end``. A few files
that are the example's alone are deleted, and the migrations that remain are rewired
around the deleted ones.
"""

import argparse
import os
import re
import secrets
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).resolve()

TEMPLATE_NAME = "fastapi-service"
TEMPLATE_DISTRIBUTION = "fastapi-service-template"
# Either spelling, and the distribution's "-template" form, as a whole word: a name
# followed by "-" is a prefix of another name (fastapi-service-metrics) and is renamed.
TEMPLATE_WORD = re.compile(r"(?<![A-Za-z0-9_])fastapi([-_])service(?:\1template)?(?![A-Za-z0-9_])")
DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
# Kubernetes object names are built from it, the longest "NAME-pgbouncer" (a Service,
# at most 63 characters).
MAX_NAME_LENGTH = 53

# Never read or rewritten: history, virtualenvs, caches, build output.
SKIPPED_DIRECTORIES = {".git", "__pycache__", "node_modules", "htmlcov", "build", "dist"}
SKIPPED_FILES = {".git"}  # a worktree's pointer to its repository
SKIPPED_DIRECTORY_PATTERN = re.compile(r"^\.venv|_cache$|\.egg-info$|^\.(tox|nox)$")
# Local settings and secrets (gitignored), which are the developer's, not the template's.
SKIPPED_FILE_PATTERN = re.compile(r"^\.env(\..*)?$")
KEPT_FILES = {".env.example"}

# The template's own test of this script: a renamed tree has no template name to test.
TEMPLATE_ONLY = ("tests/test_init_project.py",)

EXAMPLE_MARKER = re.compile(r"(?:#|<!--)\s*example:items(?P<kind>:begin|:end)?\s*(?:-->)?\s*$")
# The example's own files. The benchmark measures the example's endpoints against the
# same work by hand, so without the example it has nothing to measure.
EXAMPLE_PATHS = (
    "app/items",
    "tests/test_items.py",
    "tests/test_idempotency.py",
    "migrations/versions/20261202_0003_index_items_by_owner_and_id.py",
    "bench",
    "tests/test_benchmark.py",
    "docs/benchmarks.md",
)
# What a marker cannot reach (a docstring, a line in a Markdown code block), where it is
# still found: (path, old, new), and (path, the start of lines to remove).
EXAMPLE_EDITS = (
    (
        "migrations/versions/20261125_0002_create_users_and_items.py",
        "Create users and items.",
        "Create users.",
    ),
    ("docs/architecture.md", "(local, tests, bench)", "(local, tests)"),
)
EXAMPLE_LINES = (("docs/architecture.md", "  items/ "), ("docs/architecture.md", "bench/ "))
EXAMPLE_RENAMES = (
    (
        "migrations/versions/20261125_0002_create_users_and_items.py",
        "migrations/versions/20261125_0002_create_users.py",
    ),
)
MIGRATIONS = "migrations/versions"
REVISION = re.compile(r'^revision\b[^=\n]*=\s*["\'](?P<id>[^"\']+)["\']', re.MULTILINE)
DOWN_REVISION = re.compile(
    r'^(?P<head>down_revision\b[^=\n]*=\s*)(?:["\'](?P<id>[^"\']+)["\']|None)', re.MULTILINE
)

ENV_FILE = """\
# Local settings for this checkout (gitignored, written by `make init`): `make run`,
# `make dev`, alembic and gunicorn read it, and real environment variables win.
# Every variable is described in .env.example.
# A development signing key of this checkout's own; production sets its own secret.
JWT_SECRET_KEY={secret}
"""


class RefusedError(Exception):
    """Why nothing was done, in one line; ``status`` is the exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Plan:
    """Every change, worked out before the first one is written."""

    root: Path
    texts: dict[Path, str] = field(default_factory=dict)  # new contents, by path
    originals: dict[Path, str] = field(default_factory=dict)
    deletions: list[Path] = field(default_factory=list)
    env_secret: str | None = None
    renamed_from: str | None = None

    def text(self, path: Path) -> str:
        if path not in self.texts:
            self.originals[path] = self.texts[path] = path.read_bytes().decode("utf-8")
        return self.texts[path]

    def changed(self) -> list[Path]:
        """Files to write: new or with new contents, and not about to be deleted."""
        return sorted(
            path
            for path, text in self.texts.items()
            if self.originals.get(path) != text and not self.deleted(path)
        )

    def deleted(self, path: Path) -> bool:
        return any(path == gone or gone in path.parents for gone in self.deletions)


def check_name(name: str) -> None:
    if not name:
        raise RefusedError("NAME is required: make init NAME=orders-service", 2)
    if not DNS_LABEL.fullmatch(name):
        raise RefusedError(
            f"{name!r} is not a DNS-1123 label: lower-case letters, digits and '-', "
            "starting with a letter and ending with a letter or digit",
            2,
        )
    if len(name) > MAX_NAME_LENGTH:
        raise RefusedError(
            f"{name!r} is longer than {MAX_NAME_LENGTH} characters: "
            f"{name}-pgbouncer would not be a valid Kubernetes name",
            2,
        )


def current_distribution(root: Path) -> str:
    with (root / "pyproject.toml").open("rb") as file:
        name: str = tomllib.load(file)["project"]["name"]
    return name


def text_files(plan: Plan) -> Iterator[Path]:
    """Every UTF-8 file in the tree that belongs to the project, in a stable order."""
    for directory, subdirectories, files in os.walk(plan.root):
        here = Path(directory)
        subdirectories[:] = sorted(
            name
            for name in subdirectories
            if name not in SKIPPED_DIRECTORIES
            and not SKIPPED_DIRECTORY_PATTERN.search(name)
            and not (here / name).is_symlink()
        )
        for name in sorted(files):
            path = here / name
            skipped = name in SKIPPED_FILES or (
                SKIPPED_FILE_PATTERN.match(name) and name not in KEPT_FILES
            )
            if skipped or path.is_symlink() or path == SCRIPT or plan.deleted(path):
                continue
            if path in plan.texts or _is_text(path):
                yield path


def _is_text(path: Path) -> bool:
    data = path.read_bytes()
    if b"\0" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def plan_rename(plan: Plan, name: str) -> None:
    snake = name.replace("-", "_")
    for path in text_files(plan):
        text = plan.text(path)
        if TEMPLATE_WORD.search(text):
            plan.texts[path] = TEMPLATE_WORD.sub(
                lambda match: name if match[1] == "-" else snake, text
            )
    pyproject = plan.root / "pyproject.toml"
    plan.texts[pyproject] = re.sub(
        r'^description = ".*"$',
        f'description = "The {name} service: FastAPI, PostgreSQL and gunicorn."',
        plan.text(pyproject),
        count=1,
        flags=re.MULTILINE,
    )
    readme = plan.root / "README.md"
    if readme.is_file():
        plan.texts[readme] = re.sub(r"\A# .*", f"# {name}", plan.text(readme), count=1)
    plan.deletions += [plan.root / path for path in TEMPLATE_ONLY if (plan.root / path).exists()]
    plan.renamed_from = TEMPLATE_NAME


def strip_example(text: str, path: Path) -> str:
    """``text`` without the lines and regions marked as the example's."""
    kept: list[str] = []
    inside = removed = False
    for line in text.splitlines(keepends=True):
        marker = EXAMPLE_MARKER.search(line)
        kind = marker["kind"] if marker else None
        if kind == ":begin":
            if inside:
                raise RefusedError(f"{path}: example:items:begin inside another region", 1)
            inside = removed = True
        elif kind == ":end":
            if not inside:
                raise RefusedError(f"{path}: example:items:end without a begin", 1)
            inside = False
        elif inside or marker:
            removed = True
        elif removed and not line.strip() and (not kept or not kept[-1].strip()):
            removed = False  # one blank line where the removed part stood, not two
        else:
            kept.append(line)
            removed = False
    if inside:
        raise RefusedError(f"{path}: example:items:begin without an end", 1)
    stripped = "".join(kept)
    if stripped != text and text.endswith("\n"):
        stripped = stripped.rstrip("\n") + "\n"
    return stripped


def plan_example_removal(plan: Plan) -> None:
    root = plan.root
    removed_revisions: dict[str, str | None] = {}
    for relative in EXAMPLE_PATHS:
        path = root / relative
        if not path.exists():
            continue
        if path.parent == root / MIGRATIONS:
            revision, down = _revisions(plan.text(path))
            removed_revisions[revision] = down
        plan.deletions.append(path)
    for path in text_files(plan):
        text = plan.text(path)
        if "example:items" in text:
            plan.texts[path] = strip_example(text, path.relative_to(root))
    for relative, old, new in EXAMPLE_EDITS:
        path = root / relative
        if path.is_file():
            plan.texts[path] = plan.text(path).replace(old, new)
    for relative, start in EXAMPLE_LINES:
        path = root / relative
        if path.is_file():
            lines = plan.text(path).splitlines(keepends=True)
            plan.texts[path] = "".join(line for line in lines if not line.startswith(start))
    _rewire_migrations(plan, removed_revisions)
    for old_relative, new_relative in EXAMPLE_RENAMES:
        source, target = root / old_relative, root / new_relative
        if source.is_file() and not target.exists():
            plan.texts[target] = plan.text(source)
            plan.originals[target] = ""
            plan.deletions.append(source)


def _revisions(text: str) -> tuple[str, str | None]:
    revision, down = REVISION.search(text), DOWN_REVISION.search(text)
    if revision is None or down is None:
        raise RefusedError("a migration to remove names no revision and down_revision", 1)
    return revision["id"], down["id"]


def _rewire_migrations(plan: Plan, removed: dict[str, str | None]) -> None:
    """Point each migration that followed a removed one at what the removed one followed."""
    if not removed:
        return
    for path in sorted((plan.root / MIGRATIONS).glob("*.py")):
        if plan.deleted(path):
            continue
        text = plan.text(path)
        down = DOWN_REVISION.search(text)
        if down is None or down["id"] not in removed:
            continue
        target: str | None = down["id"]
        while target in removed:
            target = removed[target]
        value = "None" if target is None else f'"{target}"'
        text = DOWN_REVISION.sub(rf"\g<head>{value}", text, count=1)
        plan.texts[path] = re.sub(
            r"^Revises: .*$", f"Revises: {target or ''}", text, count=1, flags=re.MULTILINE
        )


def plan_env_file(plan: Plan) -> None:
    env = plan.root / ".env"
    if not env.exists() and not env.is_symlink():
        plan.env_secret = secrets.token_hex(32)


def make_plan(root: Path, name: str, *, example: str) -> Plan:
    """What ``make init NAME=name EXAMPLE=example`` changes; refused before any change."""
    check_name(name)
    if example not in ("yes", "no"):
        raise RefusedError(f"EXAMPLE must be yes or no, not {example!r}", 2)
    plan = Plan(root)
    distribution = current_distribution(root)
    if distribution == TEMPLATE_DISTRIBUTION:
        plan_rename(plan, name)
    elif distribution != name:
        raise RefusedError(
            f"this project is already named {distribution!r} (pyproject.toml) and make init "
            "renames only the template: rename it by hand, or start from a fresh copy",
            1,
        )
    if example == "no":
        plan_example_removal(plan)
    plan_env_file(plan)
    return plan


def apply(plan: Plan) -> None:
    for path in plan.changed():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(plan.texts[path].encode("utf-8"))
    for path in plan.deletions:
        if path.is_dir():
            _remove_tree(path)
        elif path.exists():
            path.unlink()
    if plan.env_secret is not None:
        env = plan.root / ".env"
        env.write_text(ENV_FILE.format(secret=plan.env_secret), encoding="utf-8")
        env.chmod(0o600)


def _remove_tree(directory: Path) -> None:
    for path in sorted(directory.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and not path.is_symlink():
            path.rmdir()
        else:
            path.unlink()
    directory.rmdir()


def summary(plan: Plan, name: str) -> list[str]:
    def shown(path: Path) -> str:
        return str(path.relative_to(plan.root)) + ("/" if path.is_dir() else "")

    lines = []
    if plan.renamed_from:
        lines.append(f"Renamed {plan.renamed_from} to {name}.")
    lines += [
        f"  {'changed' if path.exists() else 'created'}  {shown(path)}" for path in plan.changed()
    ]
    lines += [f"  removed  {shown(path)}" for path in plan.deletions]
    if plan.env_secret is not None:
        lines.append("  created  .env (a new development JWT_SECRET_KEY)")
    if not lines:
        lines.append(f"Nothing to change: the project is already {name}.")
    elif plan.env_secret is None and (plan.root / ".env").exists():
        lines.append("  kept     .env (it exists already)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "name", nargs="?", default="", help="the service's name, e.g. orders-service"
    )
    parser.add_argument("--example", default="yes", help="no: remove the example items resource")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    try:
        plan = make_plan(arguments.root.resolve(), arguments.name, example=arguments.example)
    except RefusedError as refusal:
        print(f"make init: {refusal}", file=sys.stderr)
        return refusal.status
    summary_lines = summary(plan, arguments.name)
    apply(plan)
    print("\n".join(summary_lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
