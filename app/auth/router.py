from typing import Annotated

from fastapi import APIRouter, Form

from app.auth import service
from app.auth.schemas import TokenResponse
from app.core.clock import ClockDep
from app.core.security import PasswordHasherDep, TokenServiceDep
from app.core.types import StorableText
from app.db.session import SessionDep
from app.users.models import EMAIL_MAX_LENGTH
from app.users.schemas import PASSWORD_MAX_LENGTH

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token", summary="Log in: exchange email and password for a bearer token")
async def issue_token(
    username: Annotated[
        StorableText, Form(min_length=1, max_length=EMAIL_MAX_LENGTH, description="The email")
    ],
    password: Annotated[StorableText, Form(min_length=1, max_length=PASSWORD_MAX_LENGTH)],
    session: SessionDep,
    hasher: PasswordHasherDep,
    tokens: TokenServiceDep,
    clock: ClockDep,
) -> TokenResponse:
    token = await service.log_in(session, hasher, tokens, username, password, clock())
    return TokenResponse(access_token=token.token, expires_in=token.expires_in)
