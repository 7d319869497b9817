"""Use case: exchange an email and password for an access token."""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.security import AccessToken, PasswordHasher, TokenService
from app.users import service as users_service


async def log_in(
    session: AsyncSession,
    hasher: PasswordHasher,
    tokens: TokenService,
    email: str,
    password: str,
    now: datetime,
) -> AccessToken:
    user = await users_service.authenticate(session, hasher, email, password)
    return tokens.issue(str(user.id), now)
