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
