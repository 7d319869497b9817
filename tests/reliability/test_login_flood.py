"""A login flood against real gunicorn with production password hashing.

Every log-in costs an Argon2 hash (64 MiB, about a tenth of a second of CPU), so a
flood of them is the cheapest way to knock a service over: by memory (a hash per
thread), by database connections, or by starving everyone else's requests of CPU.
``wrk`` sends the flood from its own process, so the test's reader measures the
service, not a load generator fighting it for the interpreter.
"""

import json
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tests.reliability.test_database_faults import an_account_to_read
from tests.support.accounts import TOKEN
from tests.support.gunicorn import GunicornServer, production_env
from tests.support.load import SteadyLoad
from tests.support.packages import ensure_debian_package

Report = Callable[[str], None]

WORKERS = 2
HASH_MEMORY_MIB = 64  # PASSWORD_HASH_MEMORY_KIB's default, in MiB
FLOOD_CONNECTIONS = 100
FLOOD_SECONDS = 10
# The other user's p99 may double under the flood, plus this much: on a shared 2-CPU CI
# machine anything else running moves a 10 ms p99 by tens of ms, while what this test
# guards against (hashes starving the event loop) moved it from 12 ms to 1.3 s.
NOISE_SECONDS = 0.05
# Unknown accounts: each attempt still verifies a (decoy) hash, as a wrong password does.
_FLOOD_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "username=nobody%40example.com&password=not-the-password"
"""


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


class _PeakRss:
    """The highest resident size each worker reached while it was sampled."""

    def __init__(self, pids: list[int]) -> None:
        self.peaks = {pid: _rss_mib(pid) for pid in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            for pid in self.peaks:
                self.peaks[pid] = max(self.peaks[pid], _rss_mib(pid))

    def __enter__(self) -> "_PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def _another_user(base_url: str, path: str, headers: dict[str, str]) -> SteadyLoad:
    """Someone reading steadily (about 150 reads a second), paced so that alone they leave
    the CPU mostly idle: their latency then measures what the flood costs others."""
    return SteadyLoad(base_url, path, clients=3, headers=headers, pause=0.02)


def _p99(seconds: list[float]) -> float:
    ordered = sorted(seconds)
    return ordered[int(len(ordered) * 0.99)]


def _statuses(lines: list[str], path: str) -> Counter[int]:
    statuses: Counter[int] = Counter()
    for line in lines:
        if '"event":"request"' in line and f'"path":"{path}"' in line:
            statuses[json.loads(line)["status"]] += 1
    return statuses


def test_a_login_flood_leaves_readiness_memory_and_other_users_alone(
    database_url: str, report: Report, tmp_path: Path
) -> None:
    wrk = ensure_debian_package("wrk", "wrk")
    script = tmp_path / "flood.lua"
    script.write_text(_FLOOD_SCRIPT)
    # Production hashing (the defaults), two workers, one hash at a time in each.
    env = production_env(database_url, WEB_CONCURRENCY=str(WORKERS))
    with GunicornServer(env) as server:
        path, headers = an_account_to_read(server.base_url)
        with _another_user(server.base_url, path, headers) as quiet:
            warm = time.monotonic() + 1  # connections opened, caches filled: not counted
            time.sleep(4)
        unloaded_p99 = _p99([o.seconds for o in quiet.between(warm, time.monotonic())])
        baseline = {pid: _rss_mib(pid) for pid in server.worker_pids()}

        flood = [wrk, "-t1", f"-c{FLOOD_CONNECTIONS}", f"-d{FLOOD_SECONDS}s", "--timeout", "30s"]
        with (
            _PeakRss(server.worker_pids()) as rss,
            _another_user(server.base_url, path, headers) as reader,
            SteadyLoad(server.base_url, "/ready", clients=1, pause=0.1) as readiness,
        ):
            time.sleep(1)  # the flood starts with both already running
            subprocess.run(
                [*flood, "-s", str(script), f"{server.base_url}{TOKEN}"],
                check=True,
                capture_output=True,
                timeout=FLOOD_SECONDS + 40,
            )

    logins = _statuses(server.lines, TOKEN)
    read_seconds = [o.seconds for o in reader.outcomes if o.status == 200]
    loaded_p99 = _p99(read_seconds)
    ready_statuses = Counter(o.status for o in readiness.outcomes)
    growth = {pid: rss.peaks[pid] - baseline[pid] for pid in baseline}
    bound = HASH_MEMORY_MIB + 32  # one hash at a time per worker, plus allocator slack
    report(
        f"login flood ({FLOOD_CONNECTIONS} connections, {FLOOD_SECONDS} s, {WORKERS} workers): "
        f"log-in answers {dict(sorted(logins.items()))}; /ready {dict(ready_statuses)}; "
        f"other user's read p99 {unloaded_p99 * 1000:.1f} ms unloaded, "
        f"{loaded_p99 * 1000:.1f} ms under the flood ({len(read_seconds)} reads, "
        f"{Counter(o.status for o in reader.outcomes)}); worker RSS "
        + ", ".join(f"{baseline[p]:.0f} -> peak {rss.peaks[p]:.0f} MiB" for p in baseline)
        + f" (bound +{bound} MiB each)"
    )
    assert 500 not in logins
    assert logins[401] > 0  # the flood was hashed, not merely turned away
    assert set(ready_statuses) == {200}
    assert {o.status for o in reader.outcomes} == {200}
    assert loaded_p99 <= 2 * unloaded_p99 + NOISE_SECONDS
    assert max(growth.values()) <= bound
