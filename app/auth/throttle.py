"""Login and registration throttling, counted in a store every worker and replica shares.

Guessing passwords costs the attacker one request and the service one Argon2 hash, so
attempts are counted before any hash is computed, atomically in the store (guesses
sent in parallel count too): log-in attempts per account (``LOGIN_RATE_LIMIT``) and
per client address (``LOGIN_IP_RATE_LIMIT``, IPv6 per /64), registrations per address
(``REGISTER_RATE_LIMIT``), in the ``limits`` library's syntax (``5/15minutes``). Over
a limit the answer is a 429 with ``Retry-After``. A successful log-in clears its
account's count. Accounts are counted under an HMAC of the canonical email, so the
store never holds an address, nor a hash a list of emails could be matched against.

The store is Redis (``RATE_LIMIT_STORAGE_URL``); ``memory://`` counts per process and
is for development and tests. When the store cannot answer within 0.5 s, throttling
fails open (and leaves the store alone for 5 s): the request goes on unthrottled, with
a warning and the ``rate_limit_store_errors_total`` metric, because refusing every
log-in while Redis is down would turn its outage into the service's.
"""

import asyncio
import hashlib
import hmac
import ipaddress
import math
import time
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

import structlog
from fastapi import Depends
from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from redis.asyncio import ConnectionPool

from app.auth.errors import TooManyAttemptsError
from app.core.config import Settings
from app.core.resources import Resource

logger = structlog.get_logger(__name__)

T = TypeVar("T")

# A store slower than this is treated as down: a log-in must not wait on it.
_STORE_TIMEOUT_SECONDS = 0.5
# After a failure the store is left alone this long, so an outage costs one wait per
# worker every few seconds rather than one per store call.
_STORE_REST_SECONDS = 5.0


class LoginThrottle:
    def __init__(self, settings: Settings, *, on_store_error: Callable[[], None]) -> None:
        url = settings.rate_limit_storage_url.get_secret_value()
        options: dict[str, Any] = {}
        self._pool: ConnectionPool | None = None
        if url.startswith("redis"):
            self._pool = ConnectionPool.from_url(
                url,
                socket_timeout=_STORE_TIMEOUT_SECONDS,
                socket_connect_timeout=_STORE_TIMEOUT_SECONDS,
            )
            # Keys are prefixed with the service's name: services can share one Redis.
            options = {
                "implementation": "redispy",
                "connection_pool": self._pool,
                "key_prefix": f"{settings.app_name}:limits",
            }
        storage = storage_from_string(f"async+{url}", **options)
        assert isinstance(storage, Storage)  # noqa: S101  (async+ schemes give async storage)
        self._limiter = MovingWindowRateLimiter(storage)
        self._account = parse(settings.login_rate_limit)
        self._login_client = parse(settings.login_ip_rate_limit)
        self._registration = parse(settings.register_rate_limit)
        # Keyed with the token secret: a list of emails cannot be hashed to find keys.
        self._account_secret = hashlib.sha256(
            settings.jwt_secret_key.get_secret_value().encode()
        ).digest()
        self._on_store_error = on_store_error
        self._resting_until = 0.0

    async def check_log_in(self, *, email: str, client: str | None) -> None:
        """Counts the attempt against the client and the account; raises if over a limit.

        Counted before the password is checked, atomically in the store, so guesses
        sent in parallel are counted too; a successful log-in then clears the account's.
        """
        if client is not None:
            await self._hit(self._login_client, "login-client", _client_key(client), "client")
        await self._hit(self._account, "login-account", self._account_key(email), "account")

    async def succeeded_log_in(self, *, email: str) -> None:
        account = self._account_key(email)
        await self._store(self._limiter.clear(self._account, "login-account", account))

    async def check_registration(self, *, client: str | None) -> None:
        if client is not None:
            await self._hit(self._registration, "register-client", _client_key(client), "client")

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.disconnect()

    def _account_key(self, email: str) -> str:
        """The caller passes the canonical email, so every spelling of one counts once."""
        return hmac.new(self._account_secret, email.encode(), hashlib.sha256).hexdigest()

    async def _hit(self, limit: RateLimitItem, kind: str, key: str, per: str) -> None:
        allowed = await self._store(self._limiter.hit(limit, kind, key))
        if allowed is not False:
            return
        stats = await self._store(self._limiter.get_window_stats(limit, kind, key))
        retry_after = 1 if stats is None else max(1, math.ceil(stats.reset_time - time.time()))
        # The address, or the account's keyed-hash prefix: never the email.
        logger.info("attempts throttled", limit=str(limit), per=per, who=key[:12])
        raise TooManyAttemptsError(retry_after)

    async def _store(self, call: Coroutine[Any, Any, T]) -> T | None:
        """The store's answer, or None when it cannot give one in time (fail open)."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._resting_until:
            call.close()
            self._on_store_error()
            return None
        try:
            async with asyncio.timeout(_STORE_TIMEOUT_SECONDS):
                return await call
        except Exception as exc:
            self._resting_until = loop.time() + _STORE_REST_SECONDS
            self._on_store_error()
            logger.warning("rate limit store unavailable, not throttling", error=type(exc).__name__)
            return None


def _client_key(address: str) -> str:
    """The address; for IPv6 its /64, which one subscriber usually holds whole."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return address


LOGIN_THROTTLE = Resource[LoginThrottle]("login_throttle")
LoginThrottleDep = Annotated[LoginThrottle, Depends(LOGIN_THROTTLE)]
