"""Access tokens: signed JWTs, issued at log-in and checked on every request.

Each token is checked for its signature (the configured algorithm only), issuer,
audience and every required claim, and its ``exp``/``nbf`` against an injected clock
(so expiry is testable without sleeping), with ``JWT_LEEWAY_SECONDS`` of skew. Its
lifetime, ``exp`` less ``iat`` and less ``nbf``, may not exceed
``ACCESS_TOKEN_EXPIRE_MINUTES`` plus that leeway.

Keys rotate without logging anyone out: a token names the key that signed it in its
``kid`` header, and ``JWT_PREVIOUS_KEYS`` still verify the tokens of keys retired from
signing. A key's ``kid`` is derived from the key (a hash prefix of what verifies it),
so no setting names keys. A token without ``kid`` (issued before keys had one) is
checked against the current key only; an unknown ``kid`` is refused.
"""

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any

import jwt
from fastapi import Depends

from app.auth.errors import AuthenticationError
from app.core.clock import Clock
from app.core.config import Settings
from app.core.resources import Resource

_REQUIRED_CLAIMS = ["exp", "iat", "nbf", "sub", "iss", "aud"]
# About 1 MiB of tokens: enough for every client active in a worker at once.
_VERIFIED_TOKENS_KEPT = 4096


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    expires_in: int


class TokenService:
    def __init__(self, settings: Settings, clock: Clock) -> None:
        self._clock = clock
        self._algorithm = settings.jwt_algorithm
        self._signing_key = settings.jwt_secret_key.get_secret_value()
        current = settings.jwt_public_key or self._signing_key
        self._kid = key_id(current)
        previous = [key.get_secret_value() for key in settings.jwt_previous_keys]
        self._verifying_keys = {key_id(key): key for key in (*previous, current)}
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._lifetime = timedelta(minutes=settings.access_token_expire_minutes)
        self._leeway = timedelta(seconds=settings.jwt_leeway_seconds)
        self._longest_lifetime = self._lifetime + self._leeway
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
        token = jwt.encode(
            claims, self._signing_key, algorithm=self._algorithm, headers={"kid": self._kid}
        )
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
            kid = jwt.get_unverified_header(token).get("kid", self._kid)
            key = self._verifying_keys.get(kid) if isinstance(kid, str) else None
            if key is None:
                raise AuthenticationError("unknown signing key")
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
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
        issued, expires, not_before = (_timestamp(claims[name]) for name in ("iat", "exp", "nbf"))
        # Tokens are issued for one lifetime: a longer one (exp in the year 2200) is not
        # one this service issued as configured, and would work until its key is retired.
        if expires - min(issued, not_before) > self._longest_lifetime:
            raise AuthenticationError("lifetime too long")
        return subject, expires, not_before


def key_id(verifying_key: str) -> str:
    """The ``kid`` of a key: 16 hex digits of the SHA-256 of the secret or public key."""
    return hashlib.sha256(verifying_key.encode()).hexdigest()[:16]


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, int | float):
        raise AuthenticationError("malformed time claim")
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, ValueError, OSError):
        raise AuthenticationError("time claim out of range") from None


TOKEN_SERVICE = Resource[TokenService]("token_service")
TokenServiceDep = Annotated[TokenService, Depends(TOKEN_SERVICE)]
