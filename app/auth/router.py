from typing import Annotated

from fastapi import Form

from app.auth import service
from app.auth.schemas import TokenResponse
from app.core.routing import resource_router
from app.core.security import PasswordHasherDep, TokenServiceDep
from app.core.types import StorableText
from app.db.database import DatabaseDep
from app.users.models import EMAIL_MAX_LENGTH
from app.users.schemas import PASSWORD_MAX_LENGTH

router = resource_router("auth")


@router.post("/token", summary="Log in: exchange email and password for a bearer token")
async def issue_token(
    username: Annotated[
        StorableText, Form(min_length=1, max_length=EMAIL_MAX_LENGTH, description="The email")
    ],
    password: Annotated[StorableText, Form(min_length=1, max_length=PASSWORD_MAX_LENGTH)],
    db: DatabaseDep,
    hasher: PasswordHasherDep,
    tokens: TokenServiceDep,
) -> TokenResponse:
    token = await service.log_in(db, hasher, tokens, username, password)
    return TokenResponse(access_token=token.token, expires_in=token.expires_in)
