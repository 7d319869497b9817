"""Use cases for accounts: registration and checking credentials."""

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import AuthenticationError, ConflictError
from app.core.security import PasswordHasher
from app.users import repository
from app.users.models import User


async def register(
    session: AsyncSession, hasher: PasswordHasher, email: str, password: str
) -> User:
    if await repository.get_by_email(session, email) is not None:
        raise ConflictError("An account with this email already exists.")
    try:
        return await repository.add(session, email, await hasher.hash(password))
    except IntegrityError:  # registered concurrently, between the check and the insert
        raise ConflictError("An account with this email already exists.") from None


async def authenticate(
    session: AsyncSession, hasher: PasswordHasher, email: str, password: str
) -> User:
    """The account these credentials open; the same error, in the same time, for any miss."""
    user = await repository.get_by_email(session, email)
    valid, new_hash = await hasher.verify(password, user.password_hash if user else None)
    if user is None or not valid:
        raise AuthenticationError("wrong email or password")
    if new_hash is not None:  # hashing parameters changed since this hash was made
        user.password_hash = new_hash
    return user
