"""A real PgBouncer in transaction pooling mode, in front of the test PostgreSQL server.

Debian's ``pgbouncer`` (installed on demand), on a free loopback port, with a small
server pool so that many clients share few server connections: the situation in
which session state and named prepared statements break. It refuses to run as root,
so under root it drops to the ``postgres`` user.
"""

import contextlib
import os
import pwd
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from sqlalchemy.engine import make_url

from tests.support.database import SERVER_URL
from tests.support.gunicorn import free_port
from tests.support.packages import ensure_debian_package


class PgBouncer:
    def __init__(self, *, server_pool_size: int = 4) -> None:
        self.port = free_port()
        self.server_pool_size = server_pool_size
        self._directory = tempfile.TemporaryDirectory(prefix="pgbouncer-")
        self._process: subprocess.Popen[bytes] | None = None

    def url_for(self, database_url: str) -> str:
        """``database_url`` (a database on the test server) reached through PgBouncer."""
        url = make_url(database_url).set(host="127.0.0.1", port=self.port)
        return url.render_as_string(hide_password=False)

    @property
    def log(self) -> str:
        return (Path(self._directory.name) / "pgbouncer.log").read_text()

    def __enter__(self) -> Self:
        executable = ensure_debian_package("pgbouncer", "pgbouncer")
        directory = Path(self._directory.name)
        run_as: list[str] = []
        if os.geteuid() == 0:
            run_as = ["-u", "postgres"]
            account = pwd.getpwnam("postgres")
            os.chown(directory, account.pw_uid, account.pw_gid)  # for its log file
        server = make_url(SERVER_URL)
        user = server.username or "postgres"
        (directory / "users.txt").write_text(f'"{user}" ""\n')
        (directory / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={server.host or '127.0.0.1'} port={server.port or 5432}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {directory / 'users.txt'}\n"
            f"pool_mode = transaction\ndefault_pool_size = {self.server_pool_size}\n"
            "max_client_conn = 1000\n"
            f"logfile = {directory / 'pgbouncer.log'}\n"
        )
        for name in ("users.txt", "pgbouncer.ini"):
            (directory / name).chmod(0o644)
        self._process = subprocess.Popen(
            [executable, *run_as, str(directory / "pgbouncer.ini")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._wait_until_listening()
        return self

    def _wait_until_listening(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                assert self._process.stderr is not None
                raise RuntimeError(f"pgbouncer exited: {self._process.stderr.read().decode()}")
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            time.sleep(0.05)
        raise RuntimeError("pgbouncer did not start listening")

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.communicate(timeout=10)
        self._directory.cleanup()
