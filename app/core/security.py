"""Password hashing (Argon2) and access tokens (JWT), configured from settings.

Hashing is deliberately slow, so it runs in a worker thread and never blocks the
event loop. Token checks use an injected clock, so expiry is testable without sleeping.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, cast

import jwt
from anyio import to_thread
from fastapi import Depends, Request
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.core.config import Settings
from app.core.errors import AuthenticationError

_REQUIRED_CLAIMS = ["exp", "iat", "nbf", "sub", "iss", "aud"]


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
        self._decoy = self._hash.hash("decoy-password-for-unknown-accounts")

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


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    expires_in: int


class TokenService:
    def __init__(self, settings: Settings) -> None:
        assert settings.jwt_secret_key is not None  # noqa: S101  (guaranteed by Settings)
        self._algorithm = settings.jwt_algorithm
        self._signing_key = settings.jwt_secret_key.get_secret_value()
        self._verifying_key = settings.jwt_public_key or self._signing_key
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._lifetime = timedelta(minutes=settings.access_token_expire_minutes)
        self._leeway = timedelta(seconds=settings.jwt_leeway_seconds)

    def issue(self, subject: str, now: datetime) -> AccessToken:
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

    def subject(self, token: str, now: datetime) -> str:
        """The ``sub`` of a valid token; raises AuthenticationError saying why it is not."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._verifying_key,
                algorithms=[self._algorithm],
                audience=self._audience,
                issuer=self._issuer,
                # Time claims are checked below against the injected clock.
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
        if now > _timestamp(claims["exp"]) + self._leeway:
            raise AuthenticationError("expired")
        if now + self._leeway < _timestamp(claims["nbf"]):
            raise AuthenticationError("not yet valid")
        subject = claims["sub"]
        if not isinstance(subject, str):
            raise AuthenticationError("malformed subject")
        return subject


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
