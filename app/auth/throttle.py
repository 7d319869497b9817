"""Login and registration throttling, counted in a store every worker and replica shares.

Guessing passwords costs the attacker one request and the service one Argon2 hash, so
attempts are counted before any hash is computed: failed log-ins per account
(``LOGIN_RATE_LIMIT``), log-in attempts per client address (``LOGIN_IP_RATE_LIMIT``)
and registrations per client address (``REGISTER_RATE_LIMIT``), in the ``limits``
library's syntax (``5/15minutes``). Over a limit the answer is a 429 with
``Retry-After``. A successful log-in clears its account's failures. Accounts are
counted under a hash of the normalised email, so the store never holds an address.

The store is Redis (``RATE_LIMIT_STORAGE_URL``); ``memory://`` counts per process and
is for development and tests. When the store cannot be reached in time, throttling
fails open: the request goes on unthrottled, with a warning and the
``rate_limit_store_errors_total`` metric, because refusing every log-in while Redis is
down would turn its outage into the service's.
"""

import asyncio
import hashlib
import math
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import structlog
from fastapi import Depends
from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from app.auth.errors import TooManyAttemptsError
from app.core.config import Settings
from app.core.resources import Resource

logger = structlog.get_logger(__name__)

T = TypeVar("T")

# A store slower than this is treated as down: a log-in must not wait on it.
_STORE_TIMEOUT_SECONDS = 0.5


class LoginThrottle:
    def __init__(self, settings: Settings, *, on_store_error: Callable[[], None]) -> None:
        url = settings.rate_limit_storage_url.get_secret_value()
        options = {}
        if url.startswith("redis"):
            # Keys are prefixed with the service's name: services can share one Redis.
            options = {"implementation": "redispy", "key_prefix": f"{settings.app_name}:limits"}
        storage = storage_from_string(f"async+{url}", **options)
        assert isinstance(storage, Storage)  # noqa: S101  (async+ schemes give async storage)
        self._limiter = MovingWindowRateLimiter(storage)
        self._account = parse(settings.login_rate_limit)
        self._login_client = parse(settings.login_ip_rate_limit)
        self._registration = parse(settings.register_rate_limit)
        self._on_store_error = on_store_error

    async def check_log_in(self, *, email: str, client: str | None) -> None:
        """Counts the attempt; raises if the client or the account is over its limit."""
        if client is not None:
            await self._hit(self._login_client, "login-client", client)
        account = _account_key(email)
        allowed = await self._store(self._limiter.test(self._account, "login-account", account))
        if allowed is False:
            await self._refuse(self._account, "login-account", account, "account")

    async def failed_log_in(self, *, email: str) -> None:
        await self._store(self._limiter.hit(self._account, "login-account", _account_key(email)))

    async def succeeded_log_in(self, *, email: str) -> None:
        await self._store(self._limiter.clear(self._account, "login-account", _account_key(email)))

    async def check_registration(self, *, client: str | None) -> None:
        if client is not None:
            await self._hit(self._registration, "register-client", client)

    async def _hit(self, limit: RateLimitItem, kind: str, key: str) -> None:
        allowed = await self._store(self._limiter.hit(limit, kind, key))
        if allowed is False:
            await self._refuse(limit, kind, key, "client")

    async def _refuse(self, limit: RateLimitItem, kind: str, key: str, scope: str) -> None:
        stats = await self._store(self._limiter.get_window_stats(limit, kind, key))
        retry_after = 1 if stats is None else max(1, math.ceil(stats.reset_time - time.time()))
        # The address or the account's hash prefix, never the email.
        logger.info("attempts throttled", limit=str(limit), per=scope, who=key[:12])
        raise TooManyAttemptsError(retry_after)

    async def _store(self, call: Awaitable[T]) -> T | None:
        """The store's answer, or None when it cannot give one in time (fail open)."""
        try:
            async with asyncio.timeout(_STORE_TIMEOUT_SECONDS):
                return await call
        except Exception as exc:
            self._on_store_error()
            logger.warning("rate limit store unavailable, not throttling", error=type(exc).__name__)
            return None


def _account_key(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


LOGIN_THROTTLE = Resource[LoginThrottle]("login_throttle")
LoginThrottleDep = Annotated[LoginThrottle, Depends(LOGIN_THROTTLE)]
