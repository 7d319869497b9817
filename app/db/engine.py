"""The process's one async engine and its connection pool.

Creating the engine opens no connection, so the service starts (and answers
``/health``) while the database is down; the pool connects on first use. Connections
that died while the database was away are replaced without a ping on every checkout
(see ``app.db.database``); ``DB_POOL_PRE_PING`` adds the ping for those who want it.
"""

from typing import Any

# Imported with the app rather than by the first create_engine: under gunicorn the
# master loads the driver once and every worker starts with it already in memory.
import sqlalchemy.dialects.postgresql.asyncpg  # noqa: F401
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.core.config import Settings

_TIMEOUT_SLACK_SECONDS = 5


def create_engine(settings: Settings) -> AsyncEngine:
    return create_async_engine(
        settings.sqlalchemy_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=settings.db_pool_recycle,
        pool_pre_ping=settings.db_pool_pre_ping,
        # Statement errors would otherwise quote bound values (emails, tokens) into
        # logs and error reports.
        hide_parameters=True,
        connect_args=_pgbouncer_args(settings) if settings.db_pgbouncer else _direct_args(settings),
    )


def _direct_args(settings: Settings) -> dict[str, Any]:
    """The server enforces the statement timeout, set once per connection at start-up."""
    return {
        "timeout": settings.db_connect_timeout,
        "command_timeout": _client_side_timeout(settings),
        "server_settings": {
            "application_name": settings.app_name,
            "statement_timeout": str(settings.db_statement_timeout_ms),
        },
    }


def _pgbouncer_args(settings: Settings) -> dict[str, Any]:
    """Through PgBouncer in transaction pooling mode, where no session state survives.

    A server connection serves whichever client has a transaction open, so:
    - No ``statement_timeout`` startup parameter (PgBouncer refuses the connection).
      asyncpg times every statement out itself at the same limit and then sends
      PostgreSQL a cancel request, which PgBouncer forwards to the server connection
      running it: the statement is cut on the server at the timeout, as in direct mode.
    - No named prepared statement, which would stay on one server connection and be
      missing (or collide) on the next: asyncpg's statement cache is off, SQLAlchemy's
      too, and every statement is prepared unnamed. An unnamed statement lives until
      the next one is parsed, so it must be executed in the same transaction:
      ``Database`` runs reads in a transaction in this mode (``BEGIN``, the query,
      ``ROLLBACK``) instead of in autocommit.
    """
    timeout = settings.db_statement_timeout_ms / 1000 or None
    return {
        "timeout": settings.db_connect_timeout,
        "command_timeout": timeout,
        "statement_cache_size": 0,
        "prepared_statement_cache_size": 0,
        "prepared_statement_name_func": _unnamed,
        "server_settings": {"application_name": settings.app_name},
    }


def _unnamed() -> str:
    return ""


def _client_side_timeout(settings: Settings) -> float | None:
    """How long asyncpg waits for any answer: the server's statement timeout plus slack.

    The server enforces ``statement_timeout``; this bounds what it cannot, a network
    that stops answering, where a query would otherwise wait for TCP to give up (hours).
    """
    if settings.db_statement_timeout_ms == 0:
        return None
    return settings.db_statement_timeout_ms / 1000 + _TIMEOUT_SLACK_SECONDS
