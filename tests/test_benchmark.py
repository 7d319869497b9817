"""``make bench`` cannot rot: a seconds-long run starts everything and prints the whole table.

No ratio is asserted: speed is the benchmark's to report, not a test's to time. What is
asserted is that every case was measured against its baseline without a failed response.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.database import SERVER_URL
from tests.support.paths import ROOT

ROWS = (
    "GET /health",
    "trivial JSON route",
    "authenticated read by id",
    "authenticated list, limit=50",
    "authenticated create",
    "read p99 / p50",
    "warmed worker RSS, MB",
    "cold start to /ready, s",
)


def test_a_short_benchmark_run_prints_and_writes_every_row(tmp_path: Path) -> None:
    report = tmp_path / "benchmarks.md"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--rounds", "1", "--seconds", "1", "--markdown", report],
        cwd=ROOT,
        env={**os.environ, "BENCH_DATABASE_URL": SERVER_URL},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for row in ROWS:
        assert re.search(rf"^\| {re.escape(row)} \|", result.stdout, re.MULTILINE), row
    measured = re.findall(r"^\| [^|]+ \| ([\d,]+) \|", result.stdout, re.MULTILINE)
    assert len(measured) == 5
    assert all(int(rate.replace(",", "")) > 0 for rate in measured)
    written = report.read_text()
    assert "Command: `make bench`" in written
    assert all(row in written for row in ROWS)
