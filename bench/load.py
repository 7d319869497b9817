"""Load generation with ``wrk`` on loopback: one bounded run, parsed into figures."""

import re
import subprocess
import tempfile
from dataclasses import dataclass

from tests.support.packages import ensure_debian_package

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True, slots=True)
class Request:
    """What every connection sends, again and again."""

    path: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None


@dataclass(frozen=True, slots=True)
class Figures:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    failed: int  # non-2xx/3xx responses plus socket errors


def ensure_wrk() -> None:
    ensure_debian_package("wrk", "wrk")


def _lua(request: Request) -> str:
    lines = [f"wrk.method = {_lua_string(request.method)}"]
    lines += [f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in request.headers]
    if request.body is not None:
        lines.append(f"wrk.body = {_lua_string(request.body)}")
    return "\n".join(lines) + "\n"


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _milliseconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if match is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match[1]) * _UNIT_MS[match[2]]


def parse(output: str) -> Figures:
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    if rate is None or p50 is None or p99 is None:
        raise ValueError(f"unexpected wrk output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    failed = int(non_2xx[1]) if non_2xx else 0
    failed += sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    return Figures(float(rate[1]), _milliseconds(p50[1]), _milliseconds(p99[1]), failed)


def run_wrk(
    base_url: str, request: Request, *, seconds: int, connections: int, cpus: str | None
) -> Figures:
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(_lua(request))
        script.flush()
        command = [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            script.name,
            base_url + request.path,
        ]
        if cpus is not None:
            command = ["taskset", "-c", cpus, *command]
        result = subprocess.run(command, capture_output=True, text=True, check=True)
    return parse(result.stdout)
