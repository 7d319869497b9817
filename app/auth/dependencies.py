"""``CurrentPrincipal``: who a request's bearer token speaks for, or a 401.

The token is the proof: its signature, issuer, audience and lifetime are checked and
its subject names the account, with no database lookup. Queries are scoped to that
account anyway, and routes that need the account's row (``/users/me``) load it.
"""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.openapi.models import OAuth2 as OAuth2Model
from fastapi.openapi.models import OAuthFlowPassword, OAuthFlows
from fastapi.security.base import SecurityBase
from fastapi.security.utils import get_authorization_scheme_param

from app.auth.errors import AuthenticationError
from app.auth.tokens import TOKEN_SERVICE
from app.core.routing import API_PREFIX
from app.db.columns import MAX_ID

TOKEN_URL = f"{API_PREFIX}/auth/token"


@dataclass(frozen=True, slots=True)
class Principal:
    account_id: int


class BearerAuthentication(SecurityBase):
    """Reads and checks the bearer token in one dependency.

    A ``SecurityBase``, so the OpenAPI schema documents the OAuth2 password flow (the
    docs' Authorize button) exactly as ``OAuth2PasswordBearer`` would; checking the
    token here as well saves the second dependency every authenticated request would
    otherwise resolve.
    """

    def __init__(self, token_url: str) -> None:
        self.model = OAuth2Model(flows=OAuthFlows(password=OAuthFlowPassword(tokenUrl=token_url)))
        self.scheme_name = "OAuth2PasswordBearer"

    async def __call__(self, request: Request) -> Principal:
        scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationError("no bearer token")
        account_id = _account_id(TOKEN_SERVICE.of(request.scope).subject(token))
        if account_id is None:
            raise AuthenticationError("token subject is not an account")
        return Principal(account_id)


def _account_id(subject: str) -> int | None:
    """The account ID a subject names, if it is one (ASCII digits, within BIGINT)."""
    if not (subject.isascii() and subject.isdigit()):
        return None
    account_id = int(subject)
    return account_id if 0 < account_id <= MAX_ID else None


CurrentPrincipal = Annotated[Principal, Depends(BearerAuthentication(TOKEN_URL))]
