"""Every setting is documented once in .env.example and once in the README table."""

import re

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
