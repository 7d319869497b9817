"""Debian packages the suite and the benchmark need (wrk, pgbouncer), installed on demand."""

import os
import shutil
import subprocess

# Debian installs some tools outside an ordinary user's PATH.
_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def ensure_debian_package(executable: str, package: str) -> str:
    """The executable's path, installing ``package`` first on a Debian machine run as root."""
    found = shutil.which(executable, path=_SEARCH_PATH)
    if found is None and shutil.which("apt-get") and os.geteuid() == 0:
        install = ["apt-get", "install", "-y", "-qq", package]
        if subprocess.run(install, capture_output=True, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=True)
            subprocess.run(install, capture_output=True, check=True)
        found = shutil.which(executable, path=_SEARCH_PATH)
    if found is None:
        raise SystemExit(f"{executable} is needed: apt-get install {package} (Debian/Ubuntu)")
    return found
