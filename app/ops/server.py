"""What the gunicorn master needs from the app: how many workers, its budgets, its logs.

``os.cpu_count()`` counts the host's CPUs, not the container's: a 1-CPU pod on a
64-core node would start 129 workers and be OOM-killed. The usable CPU count here
honours the cgroup CPU quota (v2 and v1) and the CPU affinity mask first. The memory
limit is the cgroup's too, so the boot log can say when workers plus their password
hashing can outgrow it.
"""

import math
import os
from pathlib import Path
from typing import Any

from gunicorn.glogging import Logger

from app.core.config import Settings, get_settings
from app.core.logging import configure_logging

CGROUP_ROOT = Path("/sys/fs/cgroup")
_MIB = 1024 * 1024
_NO_MEMORY_LIMIT = 2**60


def _cgroup_cpu_limit(cgroup_root: Path) -> float | None:
    """CPUs granted by the cgroup quota, or None where no quota is set."""
    v2 = cgroup_root / "cpu.max"
    if v2.is_file():
        quota, _, period = v2.read_text().strip().partition(" ")
        if quota != "max" and period:
            return int(quota) / int(period)
        return None
    v1_quota, v1_period = (
        cgroup_root / "cpu" / "cpu.cfs_quota_us",
        cgroup_root / "cpu" / "cpu.cfs_period_us",
    )
    if v1_quota.is_file() and v1_period.is_file():
        quota_us, period_us = int(v1_quota.read_text()), int(v1_period.read_text())
        if quota_us > 0 and period_us > 0:
            return quota_us / period_us
    return None


def usable_cpu_count(cgroup_root: Path = CGROUP_ROOT) -> int:
    """CPUs this process may actually use: the least of quota, affinity and CPU count."""
    candidates = [os.cpu_count() or 1]
    if hasattr(os, "sched_getaffinity"):
        candidates.append(len(os.sched_getaffinity(0)))
    quota = _cgroup_cpu_limit(cgroup_root)
    if quota is not None:
        candidates.append(max(1, math.ceil(quota)))
    return min(candidates)


def worker_count(settings: Settings, cpus: int) -> int:
    """``WEB_CONCURRENCY`` if set, else 2 x CPUs + 1; never above ``MAX_WORKERS``."""
    workers = settings.web_concurrency or 2 * cpus + 1
    if settings.max_workers is not None:
        workers = min(workers, settings.max_workers)
    return workers


def connection_budget(settings: Settings, workers: int) -> int:
    """The most database connections this server can open at once."""
    return workers * (settings.db_pool_size + settings.db_max_overflow)


def memory_limit_mb(settings: Settings, cgroup_root: Path = CGROUP_ROOT) -> int | None:
    """``MEMORY_LIMIT_MB``, else the cgroup's memory limit (v2, then v1), else None."""
    if settings.memory_limit_mb is not None:
        return settings.memory_limit_mb
    for limit_file in (
        cgroup_root / "memory.max",
        cgroup_root / "memory" / "memory.limit_in_bytes",
    ):
        if limit_file.is_file():
            limit = limit_file.read_text().strip()
            # v1 writes "no limit" as a number near 2**63.
            if limit.isdigit() and int(limit) < _NO_MEMORY_LIMIT:
                return int(limit) // _MIB
            return None
    return None


def password_hashing_mb(settings: Settings, workers: int) -> int:
    """The most memory password hashing can hold at once: every slot of every worker busy."""
    per_hash_mb = settings.password_hash_memory_kib / 1024
    return math.ceil(workers * settings.password_hash_concurrency * per_hash_mb)


def resident_mb() -> int:
    """This process's resident memory, in MB (Linux); 0 where /proc cannot tell."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0


class GunicornLogger(Logger):  # type: ignore[misc]  # gunicorn is untyped
    """Gunicorn's own log lines, rendered like every other line of the process."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        configure_logging(get_settings())
