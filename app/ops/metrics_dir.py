"""Where gunicorn's workers write their metric samples, prepared by the master.

prometheus_client picks its mode when it is first imported, from
``PROMETHEUS_MULTIPROC_DIR``: this module must not import it, and the master runs it
before the app (and with it prometheus_client) is imported.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from app.core.config import Settings

# Marks which master prepared PROMETHEUS_MULTIPROC_DIR (inherited by its workers).
_METRICS_DIR_OWNER = "METRICS_DIR_PREPARED_BY_PID"


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
