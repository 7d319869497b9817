"""The reliability suites print what they measured at the end of the run."""

from collections.abc import Callable

import pytest

_FIGURES: list[str] = []


@pytest.fixture
def report() -> Callable[[str], None]:
    """Records one line of figures for the run's summary."""
    return _FIGURES.append


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _FIGURES:
        terminalreporter.section("reliability figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)
