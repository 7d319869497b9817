"""Every setting is documented once in .env.example and once in the README table, and
every file, module and class the README names exists, so a rename cannot leave it behind."""

import importlib
import re
from pathlib import Path

from app.core.config import Settings
from tests.support.paths import ROOT

VARIABLES = sorted(name.upper() for name in Settings.model_fields)


def test_env_example_documents_every_setting_once() -> None:
    text = (ROOT / ".env.example").read_text()
    for variable in VARIABLES:
        assignments = re.findall(rf"^#? ?{variable}=", text, re.MULTILINE)
        assert len(assignments) == 1, variable


def test_readme_table_has_a_row_for_every_setting() -> None:
    rows = re.findall(r"^\| `([A-Z0-9_]+)` \|", (ROOT / "README.md").read_text(), re.MULTILINE)
    assert sorted(set(VARIABLES) - set(rows)) == []
    assert len(rows) == len(set(rows)), "a variable has two rows"


def _documented(default: object) -> str | None:
    """How a default is written in the docs, for defaults that are a plain value."""
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    if isinstance(default, int | float) or (isinstance(default, str) and default):
        return str(default)
    return None  # unset or empty: described in words


PLAIN_DEFAULTS = {
    name.upper(): documented
    for name, field in Settings.model_fields.items()
    if (documented := _documented(field.default)) is not None
}


def example_default(lines: list[str], variable: str) -> str:
    """The ``(default: ...)`` of the comment nearest above a variable in .env.example."""
    index = next(i for i, line in enumerate(lines) if re.match(rf"#? ?{variable}=", line))
    comment = next(line for line in reversed(lines[:index]) if "(default: " in line)
    return comment.rsplit("(default: ", 1)[1].split(")")[0]


def test_documented_defaults_are_the_real_ones() -> None:
    readme = (ROOT / "README.md").read_text()
    example = (ROOT / ".env.example").read_text().splitlines()
    for variable, default in PLAIN_DEFAULTS.items():
        row = re.search(rf"^\| `{variable}` \| (.*?) \|", readme, re.MULTILINE)
        assert row is not None, variable
        assert f"`{default}`" in row[1], (variable, row[1], default)
        assert example_default(example, variable).split()[0] == default, variable


# Backticked names the README uses for things outside this project: libraries' classes,
# Kubernetes kinds and values, Argo CD hook phases.
EXTERNAL_NAMES = frozenset(
    {
        "AsyncSession",
        "BaseHTTPMiddleware",
        "ExternalSecret",
        "NullPool",
        "PreSync",
        "QueuePool",
        "ScheduleAnyway",
    }
)
# The resource the "Adding a resource" recipe builds: it exists in the reader's copy only.
RECIPE_PREFIX = "app/orders/"
_PROJECT_DIRS = ("app", "bench", "migrations", "scripts", "tests")
_DOTTED = re.compile(r"`(app(?:\.[A-Za-z_][A-Za-z0-9_]*)+)`")
_PATH = re.compile(r"`((?:app|bench|deploy|docker|docs|migrations|scripts|tests)/[^`*?<>\s]*)`")
_LINK = re.compile(r"\]\(((?!https?:|#)[\w./-]+)(?:#[\w-]*)?\)")
_CLASS_LIKE = re.compile(r"`([A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+)`")


def _readme() -> str:
    return (ROOT / "README.md").read_text()


def test_every_path_the_readme_names_exists() -> None:
    text = _readme()
    paths = set(_PATH.findall(text)) | set(_LINK.findall(text))
    missing = sorted(
        path
        for path in paths
        if not path.startswith(RECIPE_PREFIX) and not (ROOT / path.rstrip("/")).exists()
    )
    assert missing == []


def test_every_module_the_readme_names_imports() -> None:
    """``app.core.errors`` must import; ``app.db.base.Base`` must be in its module."""
    packages = {path.name for path in (ROOT / "app").iterdir()} | {"main", "lifespan", "models"}
    missing = []
    for dotted in sorted(set(_DOTTED.findall(_readme()))):
        parts = dotted.split(".")
        if parts[1] not in packages and f"{parts[1]}.py" not in packages:
            continue  # `app.dependency_overrides`: an attribute of an app, not a module
        module, attribute = dotted, None
        if (
            not (ROOT / Path(*parts)).with_suffix(".py").exists()
            and not (ROOT / Path(*parts)).is_dir()
        ):
            module, attribute = ".".join(parts[:-1]), parts[-1]
        try:
            imported = importlib.import_module(module)
        except ImportError:
            missing.append(dotted)
            continue
        if attribute is not None and not hasattr(imported, attribute):
            missing.append(dotted)
    assert missing == []


def test_every_class_the_readme_names_is_defined() -> None:
    sources = "\n".join(
        path.read_text() for folder in _PROJECT_DIRS for path in (ROOT / folder).rglob("*.py")
    )
    defined = set(re.findall(r"^\s*(?:class|def)\s+([A-Za-z_]\w*)", sources, re.MULTILINE))
    defined |= set(re.findall(r"^([A-Za-z_]\w*)\s*(?::[^=\n]*)?=", sources, re.MULTILINE))
    names = set(_CLASS_LIKE.findall(_readme())) - EXTERNAL_NAMES
    assert sorted(names - defined) == []
