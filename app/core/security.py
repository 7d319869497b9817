"""Password hashing (Argon2) and access tokens (JWT), configured from settings.

Hashing is deliberately slow, so it runs in a worker thread and never blocks the
event loop. Tokens read time from an injected clock, so expiry is testable without
sleeping.
"""

import base64
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any, cast

import jwt
from anyio import to_thread
from fastapi import Depends, Request
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.core.clock import Clock
from app.core.config import Settings
from app.core.errors import AuthenticationError

_REQUIRED_CLAIMS = ["exp", "iat", "nbf", "sub", "iss", "aud"]
# About 1 MiB of tokens: enough for every client active in a worker at once.
_VERIFIED_TOKENS_KEPT = 4096


class PasswordHasher:
    def __init__(self, settings: Settings) -> None:
        self._hash = PasswordHash(
            (
                Argon2Hasher(
                    time_cost=settings.password_hash_time_cost,
                    memory_cost=settings.password_hash_memory_kib,
                    parallelism=settings.password_hash_parallelism,
                ),
            )
        )
        # Verified against when the account does not exist, so a wrong email costs
        # exactly as long as a wrong password and reveals nothing.
        self._decoy = _decoy_hash(settings)

    async def hash(self, password: str) -> str:
        return await to_thread.run_sync(self._hash.hash, password)

    async def verify(self, password: str, password_hash: str | None) -> tuple[bool, str | None]:
        """Whether the password matches, and a new hash when the stored one is outdated.

        ``password_hash=None`` (no such account) still pays for a full verification.
        """
        if password_hash is None:
            await to_thread.run_sync(self._hash.verify, password, self._decoy)
            return False, None
        return await to_thread.run_sync(self._hash.verify_and_update, password, password_hash)


def _decoy_hash(settings: Settings) -> str:
    """An Argon2 hash with the current parameters that no password matches.

    Verifying against it costs exactly what a real account's hash costs, since that
    depends only on the parameters. Its salt and digest are random bytes rather than a
    real hash's: hashing would hold up every worker's start-up for as long as a login.
    """
    salt, digest = (base64.b64encode(os.urandom(size)).decode().rstrip("=") for size in (16, 32))
    parameters = (
        f"m={settings.password_hash_memory_kib},t={settings.password_hash_time_cost},"
        f"p={settings.password_hash_parallelism}"
    )
    return f"$argon2id$v=19${parameters}${salt}${digest}"


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    expires_in: int


class TokenService:
    def __init__(self, settings: Settings, clock: Clock) -> None:
        assert settings.jwt_secret_key is not None  # noqa: S101  (guaranteed by Settings)
        self._clock = clock
        self._algorithm = settings.jwt_algorithm
        self._signing_key = settings.jwt_secret_key.get_secret_value()
        self._verifying_key = settings.jwt_public_key or self._signing_key
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._lifetime = timedelta(minutes=settings.access_token_expire_minutes)
        self._leeway = timedelta(seconds=settings.jwt_leeway_seconds)
        self._verified = lru_cache(maxsize=_VERIFIED_TOKENS_KEPT)(self._verify)

    def issue(self, subject: str) -> AccessToken:
        now = self._clock()
        claims = {
            "sub": subject,
            "iss": self._issuer,
            "aud": self._audience,
            "iat": now,
            "nbf": now,
            "exp": now + self._lifetime,
        }
        token = jwt.encode(claims, self._signing_key, algorithm=self._algorithm)
        return AccessToken(token=token, expires_in=int(self._lifetime.total_seconds()))

    def subject(self, token: str) -> str:
        """The ``sub`` of a valid token; raises AuthenticationError saying why it is not."""
        subject, expires, not_before = self._verified(token)
        now = self._clock()
        if now > expires + self._leeway:
            raise AuthenticationError("expired")
        if now + self._leeway < not_before:
            raise AuthenticationError("not yet valid")
        return subject

    def _verify(self, token: str) -> tuple[str, datetime, datetime]:
        """What a token says, once everything that does not depend on the time is checked.

        Signature, algorithm, issuer, audience and claim types never change for a given
        token, so ``_verified`` keeps the answers for the tokens seen most recently:
        a client sends the same token on every request for its whole lifetime, and
        verifying it again each time would be a third of an authenticated read. Time is
        checked on every call, against the clock. A rejected token raises, so nothing
        about it is kept.
        """
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._verifying_key,
                algorithms=[self._algorithm],
                audience=self._audience,
                issuer=self._issuer,
                # Time claims are checked by subject() against the injected clock.
                options={
                    "require": _REQUIRED_CLAIMS,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise AuthenticationError("bad signature") from None
        except (jwt.InvalidAudienceError, jwt.InvalidIssuerError):
            raise AuthenticationError("wrong audience or issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthenticationError(f"missing claim {exc.claim}") from None
        except jwt.PyJWTError:
            raise AuthenticationError("malformed token") from None
        subject = claims["sub"]
        if not isinstance(subject, str):
            raise AuthenticationError("malformed subject")
        return subject, _timestamp(claims["exp"]), _timestamp(claims["nbf"])


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, int | float):
        raise AuthenticationError("malformed time claim")
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, ValueError, OSError):
        raise AuthenticationError("time claim out of range") from None


async def get_password_hasher(request: Request) -> PasswordHasher:
    return cast(PasswordHasher, request.state.password_hasher)


async def get_token_service(request: Request) -> TokenService:
    return cast(TokenService, request.state.token_service)


PasswordHasherDep = Annotated[PasswordHasher, Depends(get_password_hasher)]
TokenServiceDep = Annotated[TokenService, Depends(get_token_service)]
