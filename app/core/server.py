"""Sizing and logging for the gunicorn master (read by ``gunicorn.conf.py``).

``os.cpu_count()`` counts the host's CPUs, not the container's: a 1-CPU pod on a
64-core node would start 129 workers and be OOM-killed. The usable CPU count here
honours the cgroup CPU quota (v2 and v1) and the CPU affinity mask first.
"""

import atexit
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from gunicorn.glogging import Logger

from app.core.config import Settings, get_settings
from app.core.logging import configure_logging

CGROUP_ROOT = Path("/sys/fs/cgroup")
# Marks which master prepared PROMETHEUS_MULTIPROC_DIR (inherited by its workers).
_METRICS_DIR_OWNER = "METRICS_DIR_PREPARED_BY_PID"


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


def prepare_metrics_dir(settings: Settings) -> Path | None:
    """Give the workers an empty directory for their metric files; None if metrics are off.

    ``PROMETHEUS_MULTIPROC_DIR`` if set, else a new temporary directory. Files left by a
    previous run would be summed into this one's numbers, so the directory is emptied.
    Must run before ``prometheus_client`` is imported: it picks its mode at import.
    """
    if not settings.metrics_enabled:
        return None
    if os.environ.get(_METRICS_DIR_OWNER) == str(os.getpid()):
        # A reload (SIGHUP) re-reads gunicorn.conf.py in the same master: keep the
        # directory the running workers write to.
        return Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory = settings.prometheus_multiproc_dir
    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="metrics-"))
        # Removed when this master exits, however it exits (also --print-config);
        # forked workers inherit the hook, hence the owner check.
        atexit.register(_remove_if_owner, directory, os.getpid())
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    os.environ[_METRICS_DIR_OWNER] = str(os.getpid())
    return directory


def _remove_if_owner(directory: Path, owner_pid: int) -> None:
    if os.getpid() == owner_pid:
        shutil.rmtree(directory, ignore_errors=True)


def connection_budget(settings: Settings, workers: int) -> int:
    """The most database connections this server can open at once."""
    return workers * (settings.db_pool_size + settings.db_max_overflow)


class GunicornLogger(Logger):  # type: ignore[misc]  # gunicorn is untyped
    """Gunicorn's own log lines, rendered like every other line of the process."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        configure_logging(get_settings())
