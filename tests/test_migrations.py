"""Migrations run as their own step, with the real ``alembic`` command.

Two jobs started together (a retried Kubernetes Job, two deploys racing) must both
succeed: the advisory lock taken in ``migrations/env.py`` makes them take turns.
"""

import asyncio
import subprocess
import time
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from app.db.migration_lock import MIGRATION_LOCK_KEY
from tests.support.database import alembic, alembic_command, fetch_column


async def current_revisions(database_url: str) -> list[str]:
    return await fetch_column(database_url, "SELECT version_num FROM alembic_version")


def head_revision() -> str:
    return alembic("postgresql://unused@127.0.0.1/unused", "heads").stdout.split()[0]


def test_upgrade_head_migrates_an_empty_database(fresh_database: Callable[[], str]) -> None:
    url = fresh_database()
    result = alembic(url, "upgrade", "head")
    assert result.returncode == 0, result.stdout + result.stderr
    assert asyncio.run(current_revisions(url)) == [head_revision()]


def test_concurrent_upgrades_both_succeed(fresh_database: Callable[[], str]) -> None:
    url = fresh_database()
    jobs = [
        subprocess.Popen(
            **alembic_command(url, "upgrade", "head"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [job.communicate(timeout=60)[0] for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0], outputs
    assert asyncio.run(current_revisions(url)) == [head_revision()]


async def waiting_for_advisory_lock(connection: AsyncConnection) -> bool:
    waiting = await connection.scalar(
        text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    )
    return bool(waiting)


def test_upgrade_waits_while_another_runner_holds_the_lock(
    fresh_database: Callable[[], str],
) -> None:
    url = fresh_database()

    async def scenario() -> tuple[bool, subprocess.Popen[bytes]]:
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as holder:
                await holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
                job = subprocess.Popen(  # noqa: ASYNC220  (spawning returns at once; polled below)
                    **alembic_command(url, "upgrade", "head"), stdout=subprocess.DEVNULL
                )
                deadline = time.monotonic() + 20
                while not await waiting_for_advisory_lock(holder):
                    assert job.poll() is None, "alembic finished while the lock was held"
                    assert time.monotonic() < deadline, "alembic never reached the lock"
                    await asyncio.sleep(0.1)
                blocked = job.poll() is None
                await holder.execute(
                    text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY}
                )
            return blocked, job
        finally:
            await engine.dispose()

    blocked, job = asyncio.run(scenario())
    assert blocked
    assert job.wait(timeout=60) == 0
    assert asyncio.run(current_revisions(url)) == [head_revision()]


def test_downgrade_to_base_then_upgrade_again(fresh_database: Callable[[], str]) -> None:
    url = fresh_database()
    for step in (("upgrade", "head"), ("downgrade", "base"), ("upgrade", "head")):
        result = alembic(url, *step)
        assert result.returncode == 0, result.stdout + result.stderr
    tables = asyncio.run(
        fetch_column(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    )
    assert {"users", "idempotency_keys", "alembic_version"} <= set(tables)


def test_models_and_migrations_agree(database_url: str) -> None:
    """``alembic check`` finds nothing to generate: the models are what the migrations build."""
    result = alembic(database_url, "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No new upgrade operations detected" in result.stdout + result.stderr
