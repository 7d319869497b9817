"""Throughput of the probe endpoints under real gunicorn, measured with wrk on loopback.

Prints requests/s and latency for ``/health`` and ``/ready`` on the full app, for
``/health`` with metrics off (the target: metrics cost under 10%), and for ``/health``
on a bare FastAPI app with none of our middleware, so the cost of the middleware
stack is a figure, not a guess. Bounded: a few seconds per case.

    make bench            # or: .venv/bin/python -m bench.http_throughput --seconds 10
"""

import argparse
import os
import re
import shutil
import subprocess
import sys

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from tests.support.gunicorn import GunicornServer, production_env

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/app")


def create_bare_app() -> FastAPI:
    """The same /health route with no middleware, error handlers or lifespan."""
    app = FastAPI()

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return app


def run_wrk(url: str, seconds: int, connections: int) -> dict[str, str]:
    output = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    figures = {"requests/s": re.search(r"Requests/sec:\s+([\d.]+)", output)}
    for percentile in ("50", "99"):
        figures[f"p{percentile}"] = re.search(rf"^\s+{percentile}%\s+(\S+)", output, re.MULTILINE)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result = {name: match.group(1) if match else "?" for name, match in figures.items()}
    result["non-2xx"] = errors.group(1) if errors else "0"
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit(
            "wrk is not installed (Debian/Ubuntu: apt-get install wrk; macOS: brew install wrk)"
        )

    env = production_env(DATABASE_URL, WEB_CONCURRENCY=str(args.workers), LOG_LEVEL="INFO")
    cases: list[tuple[str, str | None, str, dict[str, str]]] = [
        ("full app", None, "/health", {}),
        ("metrics off", None, "/health", {"METRICS_ENABLED": "false"}),
        ("full app", None, "/ready", {}),
        ("bare FastAPI", "bench.http_throughput:create_bare_app()", "/health", {}),
    ]
    print(f"wrk -t1 -c{args.connections} -d{args.seconds}s, {args.workers} worker(s)")
    print(f"{'case':<14}{'path':<9}{'requests/s':>12}{'p50':>10}{'p99':>10}{'non-2xx':>9}")
    for name, app, path, overrides in cases:
        with GunicornServer(env | overrides, app=app) as server:
            figures = run_wrk(server.base_url + path, args.seconds, args.connections)
        print(
            f"{name:<14}{path:<9}{figures['requests/s']:>12}{figures['p50']:>10}"
            f"{figures['p99']:>10}{figures['non-2xx']:>9}"
        )


if __name__ == "__main__":
    main()
