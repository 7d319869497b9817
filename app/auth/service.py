"""Use case: exchange an email and password for an access token."""

from app.core.security import AccessToken, PasswordHasher, TokenService
from app.db.database import Database
from app.users import service as users_service


async def log_in(
    db: Database, hasher: PasswordHasher, tokens: TokenService, email: str, password: str
) -> AccessToken:
    account_id = await users_service.authenticate(db, hasher, email, password)
    return tokens.issue(str(account_id))
