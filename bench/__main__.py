"""``make bench``: what the template's plumbing costs, as ratios to hand-written baselines.

The service, bare FastAPI and the same work by hand (``bench.baselines``) run under the
same ``gunicorn.conf.py``, one worker each, all pinned to one CPU; ``wrk`` runs pinned
to another. They run from a virtualenv of ``requirements/runtime.txt`` alone, what the
image installs: the development tools in ``.venv`` would add their own memory and
import time to every server (``rich``, for one, is picked up by structlog).

Each case loads the service and its baseline one after the other, in an order that
flips every round, and reports the median of the per-round ratios: these machines vary
by 15-20% between identical runs, so only figures measured side by side mean anything.
Everything runs on loopback against a database of its own, and stops.

    make bench                                   # 5 rounds of 5 s per side and case
    .venv/bin/python -m bench --rounds 1 --seconds 1    # a smoke run
"""

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from app.core.config import normalise_database_url
from app.db.admin import create_database_if_missing, drop_database
from bench.baselines import TRIVIAL_PATH
from bench.load import Figures, Request, ensure_wrk, run_wrk
from tests.support.gunicorn import GunicornServer, production_env
from tests.support.paths import BIN, ROOT

SERVER_URL = normalise_database_url(
    os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
)
BARE_APP = "bench.baselines:bare_app()"
RUNTIME_VENV = ROOT / ".venv-runtime"
# A CORS origin, so the CORS middleware is in the stack as in a browser-facing
# deployment; INFO, so every request writes its access line; tokens that outlive the run.
SERVICE_SETTINGS = {
    "CORS_ALLOW_ORIGINS": "https://app.example.com",
    "LOG_LEVEL": "INFO",
    "ACCESS_TOKEN_EXPIRE_MINUTES": "120",
}
# Other accounts and their items around the benchmark's own, so the tables are the size
# of a service in use: on a table of a few pages PostgreSQL rightly prefers scanning it
# whole, and a plan it keeps from then goes on scanning it whole as the create case
# grows it (development servers often run without autovacuum, which would re-plan).
ACCOUNTS_SEEDED = 100
ITEMS_SEEDED = 200  # per account
PAGE_SIZE = 50
# One row per measured case, plus the rows that are not ratios.
MAX_READ_TAIL = 3.0  # p99 / p50 of the authenticated read
MAX_WORKER_RSS_MB = 80.0
MAX_COLD_START_S = 1.0


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    service: Request
    baseline_app: str  # "bare" or "by_hand"
    baseline: Request
    target: float  # the least acceptable service / baseline throughput


@dataclass(frozen=True, slots=True)
class Result:
    case: Case
    service: list[Figures]
    baseline: list[Figures]

    @property
    def ratio(self) -> float:
        return statistics.median(
            s.requests_per_second / b.requests_per_second
            for s, b in zip(self.service, self.baseline, strict=True)
        )


def median_figures(runs: list[Figures]) -> Figures:
    return Figures(
        statistics.median(run.requests_per_second for run in runs),
        statistics.median(run.p50_ms for run in runs),
        statistics.median(run.p99_ms for run in runs),
        sum(run.failed for run in runs),
    )


def cases(token: str, item_id: int) -> list[Case]:
    auth = (("Authorization", f"Bearer {token}"),)
    create = Request(
        "/items",
        method="POST",
        headers=(*auth, ("Content-Type", "application/json")),
        body='{"title": "benchmark item", "description": "written by make bench"}',
    )
    api = "/api/v1"
    return [
        Case("GET /health", Request("/health"), "bare", Request("/health"), 0.90),
        Case("trivial JSON route", Request(TRIVIAL_PATH), "bare", Request(TRIVIAL_PATH), 0.75),
        Case(
            "authenticated read by id",
            Request(f"{api}/items/{item_id}", headers=auth),
            "by_hand",
            Request(f"/items/{item_id}", headers=auth),
            0.50,
        ),
        Case(
            f"authenticated list, limit={PAGE_SIZE}",
            Request(f"{api}/items?limit={PAGE_SIZE}", headers=auth),
            "by_hand",
            Request(f"/items?limit={PAGE_SIZE}", headers=auth),
            0.50,
        ),
        Case(
            "authenticated create",
            Request(f"{api}{create.path}", create.method, create.headers, create.body),
            "by_hand",
            create,
            0.40,
        ),
    ]


@contextmanager
def bench_database() -> Iterator[str]:
    """A new database migrated to head by the real ``alembic``; dropped afterwards."""
    url = make_url(SERVER_URL).set(database=f"bench_{uuid4().hex[:12]}")
    rendered = url.render_as_string(hide_password=False)
    asyncio.run(create_database_if_missing(rendered))
    try:
        env = {**os.environ, "DATABASE_URL": rendered, "ENVIRONMENT": "test"}
        subprocess.run(
            [str(BIN / "alembic"), "upgrade", "head"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        yield rendered
    finally:
        asyncio.run(drop_database(rendered))


def runtime_gunicorn() -> Path:
    """Gunicorn from ``RUNTIME_VENV``, created or brought in line with the lock first."""
    python = RUNTIME_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run(
            [str(BIN / "uv"), "venv", "--quiet", "--python", sys.executable, str(RUNTIME_VENV)],
            check=True,
        )
    subprocess.run(
        [
            str(BIN / "uv"),
            "pip",
            "sync",
            "--quiet",
            "--require-hashes",
            "--compile-bytecode",
            "--python",
            str(python),
            str(ROOT / "requirements" / "runtime.txt"),
        ],
        check=True,
    )
    return RUNTIME_VENV / "bin" / "gunicorn"


def seed(service: GunicornServer, database_url: str) -> tuple[str, int]:
    """Register an account through the API, give it and others items; its token, an item id."""
    credentials = {"email": f"bench-{uuid4().hex[:8]}@example.com", "password": "bench password"}
    with httpx.Client(base_url=f"{service.base_url}/api/v1", timeout=30) as api:
        api.post("/users", json=credentials).raise_for_status()
        login = api.post(
            "/auth/token",
            data={"username": credentials["email"], "password": credentials["password"]},
        )
        login.raise_for_status()
        token: str = login.json()["access_token"]
        me = api.get("/users/me", headers={"Authorization": f"Bearer {token}"})
        me.raise_for_status()
        user_id: int = me.json()["id"]

    async def insert_items() -> int:
        dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(
                "INSERT INTO users (email, password_hash)"
                " SELECT 'other-' || n || '@example.com', 'never logs in'"
                " FROM generate_series(2, $1) n",
                ACCOUNTS_SEEDED,
            )
            await connection.execute(
                "INSERT INTO items (owner_id, title, description)"
                " SELECT users.id, 'item ' || n, 'seeded by make bench'"
                " FROM users, generate_series(1, $1) n ORDER BY n, users.id",
                ITEMS_SEEDED,
            )
            item_id: int = await connection.fetchval(
                "SELECT min(id) FROM items WHERE owner_id = $1", user_id
            )
            # Statistics, as autovacuum gathers them before a table serves traffic.
            await connection.execute("ANALYZE")
            return item_id
        finally:
            await connection.close()

    return token, asyncio.run(insert_items())


def check_answers(server: GunicornServer, request: Request) -> None:
    """One request before the load: a benchmark of error responses would measure nothing."""
    response = httpx.request(
        request.method,
        server.base_url + request.path,
        headers=dict(request.headers),
        content=request.body,
    )
    if not response.is_success:
        raise SystemExit(f"{request.method} {request.path}: {response.status_code} {response.text}")


def worker_rss_mb(server: GunicornServer) -> float:
    (pid,) = server.worker_pids()
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cold_start_seconds(
    env: dict[str, str], app: str | None, path: str, gunicorn: Path, output: Path
) -> float:
    """From starting gunicorn to the first 200 from ``path``."""
    server = GunicornServer(env, app=app, gunicorn=gunicorn, output=output)
    started = time.monotonic()
    server.spawn()
    try:
        while time.monotonic() - started < 30:
            try:
                if httpx.get(server.base_url + path, timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.005)
    finally:
        server.stop()
    raise RuntimeError(f"no 200 from {path} within 30 s:\n{server.output}")


def pinning() -> tuple[str | None, str | None]:
    """CPUs for the servers and for wrk: two different ones when there are two."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return str(cpus[0]), str(cpus[1])


def _cell(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def table(results: list[Result], rss: tuple[float, float], cold: tuple[float, float]) -> str:
    header = (
        "| case | req/s | p50 ms | p99 ms | baseline | baseline req/s | ratio | target | met |",
        "|---|---:|---:|---:|---|---:|---:|---:|---|",
    )
    rows = list(header)
    for result in results:
        service, baseline = median_figures(result.service), median_figures(result.baseline)
        rows.append(
            f"| {result.case.name} | {_cell(service.requests_per_second)} "
            f"| {_cell(service.p50_ms, 2)} | {_cell(service.p99_ms, 2)} "
            f"| {'bare FastAPI' if result.case.baseline_app == 'bare' else 'by hand'} "
            f"| {_cell(baseline.requests_per_second)} | {result.ratio:.2f} "
            f"| >= {result.case.target:.2f} | {_met(result.ratio >= result.case.target)} |"
        )
        if service.failed or baseline.failed:
            rows[-1] += f" {service.failed + baseline.failed} failed responses |"
    read = next(r for r in results if r.case.name == "authenticated read by id")
    figures = median_figures(read.service)
    tail = figures.p99_ms / figures.p50_ms
    rows.append(
        f"| read p99 / p50 | | | | | | {tail:.2f} | <= {MAX_READ_TAIL:.1f} "
        f"| {_met(tail <= MAX_READ_TAIL)} |"
    )
    rows.append(
        f"| warmed worker RSS, MB | | | | bare FastAPI | {rss[1]:.0f} | {rss[0]:.0f} "
        f"| <= {MAX_WORKER_RSS_MB:.0f} | {_met(rss[0] <= MAX_WORKER_RSS_MB)} |"
    )
    rows.append(
        f"| cold start to /ready, s | | | | bare FastAPI, /health | {cold[1]:.2f} | {cold[0]:.2f} "
        f"| <= {MAX_COLD_START_S:.1f} | {_met(cold[0] <= MAX_COLD_START_S)} |"
    )
    return "\n".join(rows)


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def write_markdown(path: Path, report: str, conditions: str) -> None:
    cpu = platform.processor() or platform.machine()
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        cpu,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Benchmarks\n\n"
        "What the template's plumbing costs, measured by `make bench` "
        "(`bench/__main__.py`): the service against bare FastAPI and against the same work "
        "written by hand (`bench/baselines.py`), side by side. Ratios are the median of the "
        "per-round ratios; req/s, p50 and p99 are medians over the rounds.\n\n"
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n"
        f"- Machine: {os.cpu_count()} CPUs ({model}), Python {platform.python_version()}\n"
        f"- Conditions: {conditions}\n"
        "- Command: `make bench`\n\n"
        f"{report}\n"
    )


def measure(
    servers: dict[str, GunicornServer],
    database_url: str,
    args: argparse.Namespace,
    wrk_cpus: str | None,
) -> list[Result]:
    """Every case: checked once, warmed up, then the rounds, alternating which side leads."""
    token, item_id = seed(servers["service"], database_url)
    results = [Result(case, [], []) for case in cases(token, item_id)]

    def load(server: str, request: Request, seconds: int) -> Figures:
        return run_wrk(
            servers[server].base_url,
            request,
            seconds=seconds,
            connections=args.connections,
            cpus=wrk_cpus,
        )

    for case in (result.case for result in results):
        check_answers(servers["service"], case.service)
        check_answers(servers[case.baseline_app], case.baseline)
        load("service", case.service, 1)  # warm-up: pools filled, caches built
        load(case.baseline_app, case.baseline, 1)
    for round_number in range(args.rounds):
        for result in results:
            case = result.case
            sides = [
                (result.service, "service", case.service),
                (result.baseline, case.baseline_app, case.baseline),
            ]
            for runs, server, request in sides[:: 1 if round_number % 2 == 0 else -1]:
                runs.append(load(server, request, args.seconds))
        print(f"round {round_number + 1}/{args.rounds} done", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="per side, case and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--markdown", type=Path, help="also write the report here")
    args = parser.parse_args()
    ensure_wrk()
    gunicorn = runtime_gunicorn()
    server_cpus, wrk_cpus = pinning()
    conditions = (
        f"1 gunicorn worker per app pinned to CPU {server_cpus}, wrk pinned to CPU {wrk_cpus}"
        if server_cpus
        else "one CPU: servers and wrk share it (ratios still compare like with like)"
    )
    conditions += (
        f"; wrk -t1 -c{args.connections}, {args.seconds} s per run, "
        f"{args.rounds} rounds alternating which side runs first; servers from a virtualenv "
        f"of requirements/runtime.txt; {ACCOUNTS_SEEDED} accounts with {ITEMS_SEEDED} items each"
    )
    print(f"make bench: {conditions}", flush=True)

    with bench_database() as database_url, tempfile.TemporaryDirectory(prefix="bench-") as logs:
        env = production_env(database_url, **SERVICE_SETTINGS)
        with ExitStack() as stack:
            servers = {
                name: stack.enter_context(
                    GunicornServer(
                        env, app=app, gunicorn=gunicorn, cpus=server_cpus, output=Path(logs, name)
                    )
                )
                for name, app in [
                    ("service", "bench.service:service_app()"),
                    ("bare", BARE_APP),
                    ("by_hand", "bench.baselines:by_hand_app()"),
                ]
            }
            results = measure(servers, database_url, args, wrk_cpus)
            rss = (worker_rss_mb(servers["service"]), worker_rss_mb(servers["bare"]))
        colds = [
            (
                cold_start_seconds(env, None, "/ready", gunicorn, Path(logs, "cold-service")),
                cold_start_seconds(env, BARE_APP, "/health", gunicorn, Path(logs, "cold-bare")),
            )
            for _ in range(min(args.rounds, 3))
        ]
        cold = (statistics.median(c[0] for c in colds), statistics.median(c[1] for c in colds))

    report = table(results, rss, cold)
    print(report)
    if args.markdown:
        write_markdown(args.markdown, report, conditions)
        print(f"written to {args.markdown}")
    failed = sum(f.failed for r in results for f in (*r.service, *r.baseline))
    if failed:
        sys.exit(f"{failed} responses failed during the load: the figures are not comparable")


if __name__ == "__main__":
    main()
