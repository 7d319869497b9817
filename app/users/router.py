from fastapi import APIRouter

from app.auth.dependencies import CurrentUser
from app.core.security import PasswordHasherDep
from app.db.session import SessionDep
from app.users import service
from app.users.schemas import UserCreate, UserRead

router = APIRouter(prefix="/users", tags=["users"])


@router.post("", status_code=201, summary="Register an account")
async def register(body: UserCreate, session: SessionDep, hasher: PasswordHasherDep) -> UserRead:
    user = await service.register(session, hasher, body.email, body.password)
    return UserRead.model_validate(user)


@router.get("/me", summary="The account the bearer token belongs to")
async def read_me(user: CurrentUser) -> UserRead:
    return UserRead.model_validate(user)
