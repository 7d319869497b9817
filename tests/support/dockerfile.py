"""The project's Dockerfile as text, and its pinned base image."""

import re
from typing import NamedTuple

from tests.support.paths import ROOT

# The one literal base: FROM python:<major.minor>-slim@sha256:<digest> AS <stage>, the
# line Dependabot's docker ecosystem updates.
PINNED_BASE = re.compile(
    r"^FROM python:(\d+\.\d+)-slim@sha256:([0-9a-f]{64}) AS (\S+)$", re.MULTILINE
)


class PinnedBase(NamedTuple):
    python: str  # major.minor
    digest: str
    stage: str


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def pinned_base() -> PinnedBase:
    (found,) = PINNED_BASE.findall(dockerfile())
    return PinnedBase(*found)
