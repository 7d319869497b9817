"""Where the project and its installed tools are, for tests that run real commands."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the venv's bin: gunicorn, alembic, kubectl, hadolint
