"""Through a real PgBouncer in transaction pooling mode, with ``DB_PGBOUNCER=true``.

Many clients share four server connections, so any session state or named prepared
statement would surface as errors; the suite's database is migrated straight to
PostgreSQL, as the migration job does.
"""

import asyncio
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.db.database import Database
from app.db.engine import create_engine
from tests.support.accounts import ME, auth_headers
from tests.support.clients import app_client
from tests.support.database import alembic_command, fetch_column
from tests.support.gunicorn import GunicornServer, free_port, production_env
from tests.support.packages import ensure_debian_package
from tests.support.paths import ROOT
from tests.support.pgbouncer import PgBouncer
from tests.support.settings import FAST_PASSWORD_HASHING_ENV, make_settings

CLIENTS = 40


@pytest.fixture(scope="module")
def bouncer() -> Iterator[PgBouncer]:
    with PgBouncer(server_pool_size=4) as bouncer:
        yield bouncer


@pytest.mark.anyio
async def test_without_the_setting_pgbouncer_refuses_every_connection(
    bouncer: PgBouncer, database_url: str
) -> None:
    settings = make_settings(bouncer.url_for(database_url))
    async with app_client(settings) as client:
        response = await client.get("/ready")
    assert response.status_code == 503
    assert "unsupported startup parameter: statement_timeout" in bouncer.log


async def _mixed_traffic(base_url: str) -> list[int]:
    """One client's session: register and log in (writes), then read the account 5 times."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        headers = await auth_headers(client)
        reads = [await client.get(ME, headers=headers) for _ in range(5)]
        assert {read.json()["id"] for read in reads} == {reads[0].json()["id"]}
        return [read.status_code for read in reads]


def test_concurrent_mixed_traffic_through_pgbouncer_has_no_error(
    bouncer: PgBouncer, database_url: str
) -> None:
    env = production_env(
        bouncer.url_for(database_url),
        DB_PGBOUNCER="true",
        WEB_CONCURRENCY="2",
        **FAST_PASSWORD_HASHING_ENV,
    )

    async def run(base_url: str) -> list[list[int]]:
        return await asyncio.gather(*(_mixed_traffic(base_url) for _ in range(CLIENTS)))

    with GunicornServer(env) as server:
        assert httpx.get(f"{server.base_url}/ready").status_code == 200
        started = time.monotonic()
        sessions = asyncio.run(run(server.base_url))
        elapsed = time.monotonic() - started
        assert httpx.get(f"{server.base_url}/ready").status_code == 200

    statuses = [status for session in sessions for status in session]
    print(  # noqa: T201  (the figures this suite measures)
        f"\npgbouncer, transaction mode, 4 server connections: {CLIENTS} clients, "
        f"{CLIENTS * 7} requests (register, log in, 5 reads) in {elapsed:.1f} s, "
        f"{sum(s >= 400 for s in statuses)} errors"
    )
    assert statuses == [200] * 5 * CLIENTS


@pytest.mark.anyio
async def test_a_slow_statement_through_pgbouncer_is_cut_at_the_statement_timeout(
    bouncer: PgBouncer, database_url: str
) -> None:
    settings = make_settings(
        bouncer.url_for(database_url), db_pgbouncer=True, db_statement_timeout_ms=500
    )
    engine = create_engine(settings)
    database = Database(engine, transaction_pooler=True)
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await database.fetch_one(text("SELECT pg_sleep(5)"))
        elapsed = time.monotonic() - started
        await asyncio.sleep(0.3)
        sleeping = await fetch_column(
            database_url,
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE query = 'SELECT pg_sleep(5)' AND state = 'active'",
        )
        assert await database.fetch_one(text("SELECT 1")) is not None  # the pool still works
    finally:
        await engine.dispose()
    print(f"\npg_sleep(5) through pgbouncer, 500 ms timeout: cut after {elapsed:.2f} s")  # noqa: T201
    assert 0.5 <= elapsed < 1.5
    assert sleeping == [0]  # cancelled on the server too, not only abandoned


def test_migrations_refuse_to_run_through_pgbouncer(bouncer: PgBouncer, database_url: str) -> None:
    command = alembic_command(bouncer.url_for(database_url), "upgrade", "head")
    command["env"] = {**command["env"], "DB_PGBOUNCER": "true"}
    result = subprocess.run(**command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert "set MIGRATIONS_DATABASE_URL" in result.stderr + result.stdout

    command["env"]["MIGRATIONS_DATABASE_URL"] = database_url
    result = subprocess.run(**command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A temporary directory the user PgBouncer runs as may reach and write to."""
    with tempfile.TemporaryDirectory(prefix="pgbouncer-entrypoint-") as directory:
        Path(directory).chmod(0o777)
        yield Path(directory)


@pytest.mark.anyio
async def test_the_pgbouncer_image_entrypoint_serves_the_app(
    database_url: str, shared_tmp: Path
) -> None:
    """docker/pgbouncer/entrypoint.sh, the command the compose service and the pod run."""
    pgbouncer = ensure_debian_package("pgbouncer", "pgbouncer")
    port = free_port()
    url = make_url(database_url)
    password = 'entrypoint "test" password'  # quotes must survive the auth file
    env = {
        "PATH": f"{Path(pgbouncer).parent}:/usr/bin:/bin",
        "TMPDIR": str(shared_tmp),
        "DB_HOST": url.host or "127.0.0.1",
        "DB_PORT": str(url.port or 5432),
        "DB_NAME": url.database or "",
        "DB_USER": url.username or "postgres",
        "DB_PASSWORD": password,
        "LISTEN_PORT": str(port),
    }
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    entrypoint = str(ROOT / "docker/pgbouncer/entrypoint.sh")
    process = await asyncio.create_subprocess_exec(*as_user, "sh", entrypoint, env=env)
    try:
        through = url.set(host="127.0.0.1", port=port, password=password)
        settings = make_settings(through.render_as_string(hide_password=False), db_pgbouncer=True)
        async with app_client(settings) as client:
            for _ in range(50):  # until it listens
                if (await client.get("/ready")).status_code == 200:
                    break
                await asyncio.sleep(0.1)
            assert (await client.get("/ready")).status_code == 200
            headers = await auth_headers(client)  # a write and a read through it
            assert (await client.get(ME, headers=headers)).status_code == 200
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=10)
