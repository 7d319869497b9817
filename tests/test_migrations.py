"""Migrations run as their own step, with the real ``alembic`` command.

Two jobs started together (a retried Kubernetes Job, two deploys racing) must both
succeed: the advisory lock taken in ``migrations/env.py`` makes them take turns. Every
migration can be undone and redone (the rollback plan), through ``make migrate-down``
too.
"""

import asyncio
import subprocess
import time
from collections.abc import Callable

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from app.db.migration_lock import MIGRATION_LOCK_KEY
from tests.support.database import alembic, alembic_command, fetch_column
from tests.support.paths import BIN, ROOT


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


def revisions_oldest_first() -> list[str]:
    """Every revision in order, read from the migration scripts (nothing is run)."""
    script = ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini")))
    return [revision.revision for revision in reversed(list(script.walk_revisions()))]


# Every column, index and constraint of the application's tables, one line each.
# alembic_version is left out: it exists after a downgrade to base, not before any upgrade.
SCHEMA_QUERY = """
SELECT format('column %s.%s %s nullable=%s default=%s', table_name, column_name,
              data_type, is_nullable, column_default)
  FROM information_schema.columns
 WHERE table_schema = 'public' AND table_name <> 'alembic_version'
UNION ALL
SELECT format('index %s', indexdef)
  FROM pg_indexes
 WHERE schemaname = 'public' AND tablename <> 'alembic_version'
UNION ALL
SELECT format('constraint %s %s', conname, pg_get_constraintdef(oid))
  FROM pg_constraint
 WHERE connamespace = 'public'::regnamespace AND conrelid <> 'alembic_version'::regclass
"""


def schema(database_url: str) -> list[str]:
    return sorted(asyncio.run(fetch_column(database_url, SCHEMA_QUERY)))


def migrate(database_url: str, *step: str) -> None:
    result = alembic(database_url, *step)
    assert result.returncode == 0, (step, result.stdout + result.stderr)


def test_every_migration_downgrades_and_upgrades_again(fresh_database: Callable[[], str]) -> None:
    """Up one revision at a time, down one at a time to base, then up to head again.

    Each downgrade must leave exactly the schema its target revision had on the way up,
    so any revision is a safe rollback target (``make migrate-down REV=...``).
    """
    url = fresh_database()
    revisions = revisions_oldest_first()
    migrate(url, "upgrade", revisions[0])  # alembic_version exists from here on
    migrate(url, "downgrade", "base")
    schemas = {"base": schema(url)}
    for revision in revisions:
        migrate(url, "upgrade", revision)
        assert asyncio.run(current_revisions(url)) == [revision]
        schemas[revision] = schema(url)
    assert schemas[revisions[-1]] != schemas["base"]

    for target in reversed(["base", *revisions[:-1]]):
        migrate(url, "downgrade", target)
        assert asyncio.run(current_revisions(url)) == ([] if target == "base" else [target])
        assert schema(url) == schemas[target], f"downgrade to {target}"

    migrate(url, "upgrade", "head")
    assert asyncio.run(current_revisions(url)) == [head_revision()]
    assert schema(url) == schemas[revisions[-1]]


def make_migrate_down(database_url: str, *variables: str) -> subprocess.CompletedProcess[str]:
    """``make migrate-down`` with this test run's virtualenv, which make must not reinstall."""
    venv = BIN.parent
    command = alembic_command(database_url)
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-o",
            str(venv / ".installed"),
            "migrate-down",
            f"VENV={venv}",
            *variables,
        ],
        cwd=command["cwd"],
        env=command["env"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_make_migrate_down_rolls_back_to_the_named_revision(
    fresh_database: Callable[[], str],
) -> None:
    url = fresh_database()
    migrate(url, "upgrade", "head")
    target = revisions_oldest_first()[-2]
    result = make_migrate_down(url, f"REV={target}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert asyncio.run(current_revisions(url)) == [target]


def test_make_migrate_down_without_rev_refuses_in_one_line(
    fresh_database: Callable[[], str],
) -> None:
    url = fresh_database()
    migrate(url, "upgrade", "head")
    result = make_migrate_down(url)
    assert result.returncode == 2
    (line,) = result.stdout.splitlines()
    assert line.startswith("make migrate-down needs REV=<revision>")
    assert asyncio.run(current_revisions(url)) == [head_revision()]


def test_models_and_migrations_agree(database_url: str) -> None:
    """``alembic check`` finds nothing to generate: the models are what the migrations build."""
    result = alembic(database_url, "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No new upgrade operations detected" in result.stdout + result.stderr
