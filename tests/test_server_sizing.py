"""Worker sizing honours the container: cgroup v2/v1 CPU quotas, affinity and the knobs.

The cgroup files are real files under a temporary directory, read by the real code;
the gunicorn configuration is checked with the real ``gunicorn --print-config``.
"""

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.core.config import Settings
from app.ops.server import (
    _cgroup_cpu_limit,
    connection_budget,
    memory_limit_mb,
    password_hashing_mb,
    usable_cpu_count,
    worker_count,
)
from tests.support.gunicorn import GUNICORN
from tests.support.paths import ROOT

AFFINITY_CPUS = len(os.sched_getaffinity(0))


def settings_for(**overrides: Any) -> Settings:
    return Settings(_env_file=None, environment="test", **overrides)


def write_cgroup_v2(root: Path, cpu_max: str) -> None:
    (root / "cpu.max").write_text(f"{cpu_max}\n")


def write_cgroup_v1(root: Path, quota_us: str, period_us: str) -> None:
    (root / "cpu").mkdir()
    (root / "cpu" / "cpu.cfs_quota_us").write_text(f"{quota_us}\n")
    (root / "cpu" / "cpu.cfs_period_us").write_text(f"{period_us}\n")


@pytest.mark.parametrize(
    ("cpu_max", "quota_cpus"),
    [
        ("100000 100000", 1),
        ("150000 100000", 2),
        ("50000 100000", 1),
        ("400000 100000", 4),
    ],
)
def test_cgroup_v2_quota_limits_usable_cpus(tmp_path: Path, cpu_max: str, quota_cpus: int) -> None:
    write_cgroup_v2(tmp_path, cpu_max)

    assert usable_cpu_count(tmp_path) == min(quota_cpus, AFFINITY_CPUS)


def test_one_cpu_cgroup_v2_quota_gives_three_workers(tmp_path: Path) -> None:
    write_cgroup_v2(tmp_path, "100000 100000")

    cpus = usable_cpu_count(tmp_path)

    assert cpus == 1
    assert worker_count(settings_for(), cpus) == 3


def test_cgroup_v2_without_quota_falls_back_to_affinity(tmp_path: Path) -> None:
    write_cgroup_v2(tmp_path, "max 100000")

    assert usable_cpu_count(tmp_path) == AFFINITY_CPUS


@pytest.mark.parametrize(
    ("quota_us", "period_us", "quota_cpus"),
    [("200000", "100000", 2), ("100000", "100000", 1), ("25000", "100000", 1)],
)
def test_cgroup_v1_quota_limits_usable_cpus(
    tmp_path: Path, quota_us: str, period_us: str, quota_cpus: int
) -> None:
    write_cgroup_v1(tmp_path, quota_us, period_us)

    assert usable_cpu_count(tmp_path) == min(quota_cpus, AFFINITY_CPUS)


def test_cgroup_v1_without_quota_falls_back_to_affinity(tmp_path: Path) -> None:
    write_cgroup_v1(tmp_path, "-1", "100000")

    assert usable_cpu_count(tmp_path) == AFFINITY_CPUS


def test_no_cgroup_files_means_affinity_decides(tmp_path: Path) -> None:
    assert usable_cpu_count(tmp_path) == AFFINITY_CPUS


@pytest.mark.parametrize(
    ("write", "expected"),
    [
        pytest.param(lambda root: write_cgroup_v2(root, "150000 100000"), 1.5, id="v2-quota"),
        pytest.param(lambda root: write_cgroup_v2(root, "max 100000"), None, id="v2-max"),
        pytest.param(lambda root: write_cgroup_v1(root, "800000", "100000"), 8.0, id="v1-quota"),
        pytest.param(lambda root: write_cgroup_v1(root, "-1", "100000"), None, id="v1-unlimited"),
        pytest.param(lambda _root: None, None, id="no-files"),
    ],
)
def test_cgroup_quota_is_read_exactly_whatever_the_machine(
    tmp_path: Path, write: Callable[[Path], None], expected: float | None
) -> None:
    write(tmp_path)

    assert _cgroup_cpu_limit(tmp_path) == expected


@pytest.mark.parametrize(
    ("web_concurrency", "max_workers", "cpus", "expected"),
    [
        (None, None, 1, 3),
        (None, None, 2, 5),
        (None, None, 64, 129),
        (3, None, 1, 3),
        (3, None, 64, 3),
        (None, 8, 64, 8),
        (None, 8, 1, 3),
        (3, 8, 64, 3),
    ],
)
def test_workers_are_web_concurrency_or_two_per_cpu_plus_one_capped_by_max_workers(
    web_concurrency: int | None, max_workers: int | None, cpus: int, expected: int
) -> None:
    settings = settings_for(web_concurrency=web_concurrency, max_workers=max_workers)

    assert worker_count(settings, cpus) == expected


@pytest.mark.parametrize(
    ("pool_size", "max_overflow", "workers", "expected"),
    [(5, 5, 3, 30), (10, 0, 4, 40), (1, 100, 1, 101), (20, 10, 129, 3870)],
)
def test_connection_budget_is_workers_times_pool_capacity(
    pool_size: int, max_overflow: int, workers: int, expected: int
) -> None:
    settings = settings_for(db_pool_size=pool_size, db_max_overflow=max_overflow)

    assert connection_budget(settings, workers) == expected


def printed_workers(**environ: str) -> int:
    """The ``workers`` value the real gunicorn configuration resolves to."""
    result = subprocess.run(
        [str(GUNICORN), "-c", "gunicorn.conf.py", "--print-config"],
        cwd=ROOT,
        env={**os.environ, **environ},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    values = [
        value.strip()
        for name, _, value in (line.partition("=") for line in result.stdout.splitlines())
        if name.strip() == "workers"
    ]
    assert len(values) == 1, result.stdout
    return int(values[0])


def machine_cpus() -> int:
    """This machine's usable CPUs, worked out independently of the code under test."""
    cpus = len(os.sched_getaffinity(0))
    cpu_max = Path("/sys/fs/cgroup/cpu.max")
    if cpu_max.is_file() and not cpu_max.read_text().startswith("max"):
        quota, period = map(int, cpu_max.read_text().split())
        cpus = min(cpus, -(-quota // period))
    return cpus


def test_gunicorn_defaults_to_two_workers_per_usable_cpu_plus_one() -> None:
    # 5 on the 2-CPU machines CI runs on
    assert printed_workers() == 2 * machine_cpus() + 1


def test_gunicorn_uses_web_concurrency_when_set() -> None:
    assert printed_workers(WEB_CONCURRENCY="3") == 3


@pytest.mark.parametrize(
    ("path", "content", "expected"),
    [
        ("memory.max", "805306368\n", 768),
        ("memory.max", "max\n", None),
        ("memory/memory.limit_in_bytes", "536870912\n", 512),
        ("memory/memory.limit_in_bytes", "9223372036854771712\n", None),  # v1's "no limit"
    ],
)
def test_memory_limit_is_the_cgroups_when_not_configured(
    tmp_path: Path, path: str, content: str, expected: int | None
) -> None:
    (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / path).write_text(content)
    assert memory_limit_mb(settings_for(), tmp_path) == expected
    configured = settings_for(memory_limit_mb=300)
    assert memory_limit_mb(configured, tmp_path) == 300


def test_no_cgroup_memory_files_means_no_known_limit(tmp_path: Path) -> None:
    assert memory_limit_mb(settings_for(), tmp_path) is None


def test_password_hashing_memory_is_every_slot_of_every_worker_busy() -> None:
    settings = settings_for(password_hash_memory_kib=65536, password_hash_concurrency=2)
    assert password_hashing_mb(settings, workers=5) == 5 * 2 * 64
