"""Use cases for accounts: registering, logging in, reading one's own."""

from typing import Any

from sqlalchemy import Row
from sqlalchemy.exc import IntegrityError

from app.auth.errors import AuthenticationError
from app.auth.passwords import PasswordHasher
from app.auth.throttle import LoginThrottle
from app.auth.tokens import AccessToken, TokenService
from app.core.errors import ConflictError
from app.db.database import Database
from app.users import repository
from app.users.emails import InvalidEmailError, canonical_email

_TAKEN = "An account with this email already exists."


async def register(
    db: Database,
    hasher: PasswordHasher,
    throttle: LoginThrottle,
    *,
    email: str,
    password: str,
    client: str | None,
) -> Row[Any]:
    await throttle.check_registration(client=client)
    # Checked first so a taken email costs no password hash.
    if await repository.get_by_email(db, email) is not None:
        raise ConflictError(_TAKEN)
    password_hash = await hasher.hash(password)
    try:
        async with db.transaction() as connection:
            return await repository.add(connection, email=email, password_hash=password_hash)
    except IntegrityError:  # registered concurrently, between the check and the insert
        raise ConflictError(_TAKEN) from None


async def log_in(
    db: Database,
    hasher: PasswordHasher,
    tokens: TokenService,
    throttle: LoginThrottle,
    *,
    email: str,
    password: str,
    client: str | None,
) -> AccessToken:
    """A token for the account these credentials open; one error, in one time, for any miss.

    The email is put in its canonical form, as registering does. One that has none (a
    look-alike, not an address) opens no account: it is throttled, and pays for a
    password check, like any other miss. Throttled before any hash is computed; a
    success clears the account's count.
    """
    try:
        email, usable = canonical_email(email), True
    except InvalidEmailError:
        usable = False
    await throttle.check_log_in(email=email, client=client)
    user = await repository.get_by_email(db, email) if usable else None
    valid, new_hash = await hasher.verify(password, user.password_hash if user else None)
    if user is None or not valid:
        raise AuthenticationError("wrong email or password")
    await throttle.succeeded_log_in(email=email)
    if new_hash is not None:  # outdated parameters, or made from an unnormalised password
        async with db.transaction() as connection:
            await repository.set_password_hash(connection, user_id=user.id, password_hash=new_hash)
    return tokens.issue(str(user.id))


async def get(db: Database, account_id: int) -> Row[Any]:
    """The caller's own account; a valid token for an account that is gone is a 401."""
    user = await repository.get_by_id(db, account_id)
    if user is None:
        raise AuthenticationError("token subject is not an account")
    return user
