"""Run the real server (``gunicorn -c gunicorn.conf.py``) as a child process for tests.

Output is collected line by line on a thread, so tests can assert on exactly what the
process printed, and the process is always stopped, even when a test fails.
"""

import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import httpx

from app.ops.metrics import METRICS_PATH
from tests.support.paths import BIN, ROOT
from tests.support.settings import GENEROUS_RATE_LIMITS, TEST_REDIS_URL

GUNICORN = BIN / "gunicorn"


# The real app plus the routes only tests need (``tests/apps.py``), for ``app=``.
TEST_APP = "tests.apps:create_test_app()"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def production_env(database_url: str, **overrides: str) -> dict[str, str]:
    """What a production deployment sets, pointed at the test's database; one worker."""
    return {
        "ENVIRONMENT": "production",
        "DATABASE_URL": database_url,
        "JWT_SECRET_KEY": secrets.token_hex(32),
        "WEB_CONCURRENCY": "1",
        "RATE_LIMIT_STORAGE_URL": TEST_REDIS_URL,
        **{name.upper(): value for name, value in GENEROUS_RATE_LIMITS.items()},
        **overrides,
    }


class GunicornServer:
    """``gunicorn -c gunicorn.conf.py`` on a free loopback port, its metrics on another.

    ``gunicorn`` is the executable (this virtualenv's unless told). ``cpus`` pins the
    server (master and workers) with ``taskset``, so a benchmark can keep it off the load
    generator's CPU. ``output`` sends what it prints to a file instead of ``lines``: a
    long load run would otherwise hold every access line here.
    """

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        app: str | None = None,
        gunicorn: Path = GUNICORN,
        cpus: str | None = None,
        output: Path | None = None,
    ) -> None:
        self.port = free_port()
        self.metrics_port = free_port()
        while self.metrics_port == self.port:  # the settings refuse one port for both
            self.metrics_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        # Where scrapes go (with metrics on): never the API's port.
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}{METRICS_PATH}"
        # No drain by default: tests that exercise it set SHUTDOWN_DRAIN_SECONDS.
        self.env = {
            **os.environ,
            "SHUTDOWN_DRAIN_SECONDS": "0",
            **env,
            "BIND": f"127.0.0.1:{self.port}",
            "METRICS_PORT": str(self.metrics_port),
        }
        self.app = app
        self.gunicorn = gunicorn
        self.cpus = cpus
        self.output_path = output
        self.lines: list[str] = []
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    @property
    def process(self) -> subprocess.Popen[str]:
        assert self._process is not None, "server not started"
        return self._process

    def start(self, timeout: float = 20) -> Self:
        self.spawn()
        self.wait_until_healthy(timeout)
        return self

    def command(self) -> list[str]:
        """The command started; a subclass serves with another, reusing the port, wait and stop."""
        return [str(self.gunicorn), "-c", "gunicorn.conf.py", *([self.app] if self.app else [])]

    def spawn(self) -> None:
        """Start the process and return at once (``start`` also waits for ``/health``)."""
        command = self.command()
        if self.cpus is not None:
            command = ["taskset", "-c", self.cpus, *command]
        if self.output_path is not None:
            with self.output_path.open("w") as log_file:  # the child keeps its own copy
                self._process = self._popen(command, log_file)
            return
        self._process = self._popen(command, subprocess.PIPE)
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()

    def _popen(self, command: list[str], stdout: IO[str] | int) -> subprocess.Popen[str]:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group, so cleanup reaches the workers
        )

    def _collect(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_until_healthy(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.output}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise TimeoutError(f"server not healthy after {timeout}s:\n{self.output}")

    @property
    def output(self) -> str:
        if self.output_path is not None:
            return self.output_path.read_text()
        return "\n".join(self.lines)

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """SIGTERM, so gunicorn's exit hooks run (its metrics directory goes); then SIGKILL."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait(timeout=10)
        if self._reader is not None:
            self._reader.join(timeout=5)
        if self._process.stdout is not None:
            self._process.stdout.close()
