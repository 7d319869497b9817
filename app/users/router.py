"""The account endpoints: register, log in (the token endpoint), read one's own account."""

from typing import Annotated

from fastapi import APIRouter, Form, Request

from app.auth.dependencies import TOKEN_URL, CurrentPrincipal
from app.auth.passwords import PasswordHasherDep
from app.auth.throttle import LoginThrottleDep
from app.auth.tokens import TokenServiceDep
from app.core.errors import PROBLEM_RESPONSES
from app.core.routing import resource_router
from app.core.types import StorableText
from app.db.database import DatabaseDep
from app.users import service
from app.users.models import EMAIL_MAX_LENGTH
from app.users.schemas import PASSWORD_MAX_LENGTH, TokenResponse, UserCreate, UserRead

router = resource_router("users")
# Logging in is an account's use case, at the OAuth2 token URL the docs' Authorize uses.
log_in_router = APIRouter(tags=["auth"], responses=PROBLEM_RESPONSES)


@router.post("", status_code=201, summary="Register an account")
async def register(
    body: UserCreate,
    request: Request,
    db: DatabaseDep,
    hasher: PasswordHasherDep,
    throttle: LoginThrottleDep,
) -> UserRead:
    user = await service.register(
        db, hasher, throttle, email=body.email, password=body.password, client=_client(request)
    )
    return UserRead.model_validate(user)


@router.get("/me", summary="The account the bearer token belongs to")
async def read_me(caller: CurrentPrincipal, db: DatabaseDep) -> UserRead:
    return UserRead.model_validate(await service.get(db, caller.account_id))


@log_in_router.post(TOKEN_URL, summary="Log in: exchange email and password for a bearer token")
async def issue_token(
    username: Annotated[
        StorableText, Form(min_length=1, max_length=EMAIL_MAX_LENGTH, description="The email")
    ],
    password: Annotated[StorableText, Form(min_length=1, max_length=PASSWORD_MAX_LENGTH)],
    db: DatabaseDep,
    request: Request,
    hasher: PasswordHasherDep,
    tokens: TokenServiceDep,
    throttle: LoginThrottleDep,
) -> TokenResponse:
    token = await service.log_in(
        db, hasher, tokens, throttle, email=username, password=password, client=_client(request)
    )
    return TokenResponse(access_token=token.token, expires_in=token.expires_in)


def _client(request: Request) -> str | None:
    """The client's address, as resolved through FORWARDED_ALLOW_IPS by the server."""
    return request.client.host if request.client else None
