"""All SQL for the ``users`` table."""

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.users.models import User


async def get_by_id(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def get_by_email(session: AsyncSession, email: str) -> User | None:
    statement = select(User).where(func.lower(User.email) == email.lower())
    result: User | None = await session.scalar(statement)
    return result


async def add(session: AsyncSession, email: str, password_hash: str) -> User:
    """Insert and flush, so a duplicate email fails here (IntegrityError), not at commit."""
    user = User(email=email, password_hash=password_hash)
    session.add(user)
    await session.flush()
    await session.refresh(user)
    return user
