"""``CurrentUser``: the account a request's bearer token belongs to, or a 401."""

from typing import Annotated

from fastapi import Depends
from fastapi.security import OAuth2PasswordBearer

from app.core.clock import ClockDep
from app.core.errors import AuthenticationError
from app.core.security import TokenServiceDep
from app.db.session import SessionDep
from app.users import repository as users_repository
from app.users.models import User

_MAX_ID = 2**63 - 1
TOKEN_URL = "/api/v1/auth/token"  # noqa: S105  (a path, not a password)

# auto_error=False: a missing token becomes our 401 problem, not FastAPI's plain one.
_bearer = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


async def get_current_user(
    token: Annotated[str | None, Depends(_bearer)],
    tokens: TokenServiceDep,
    clock: ClockDep,
    session: SessionDep,
) -> User:
    if token is None:
        raise AuthenticationError("no bearer token")
    user_id = _account_id(tokens.subject(token, clock()))
    user = await users_repository.get_by_id(session, user_id) if user_id else None
    if user is None:
        raise AuthenticationError("token subject is not an account")
    return user


def _account_id(subject: str) -> int | None:
    """The account ID a subject names, if it is one (ASCII digits, within BIGINT)."""
    if not (subject.isascii() and subject.isdigit()):
        return None
    user_id = int(subject)
    return user_id if 0 < user_id <= _MAX_ID else None


CurrentUser = Annotated[User, Depends(get_current_user)]
