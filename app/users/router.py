from app.auth.dependencies import CurrentPrincipal
from app.core.routing import resource_router
from app.core.security import PasswordHasherDep
from app.db.database import DatabaseDep
from app.users import service
from app.users.schemas import UserCreate, UserRead

router = resource_router("users")


@router.post("", status_code=201, summary="Register an account")
async def register(body: UserCreate, db: DatabaseDep, hasher: PasswordHasherDep) -> UserRead:
    user = await service.register(db, hasher, body.email, body.password)
    return UserRead.model_validate(user)


@router.get("/me", summary="The account the bearer token belongs to")
async def read_me(caller: CurrentPrincipal, db: DatabaseDep) -> UserRead:
    return UserRead.model_validate(await service.get(db, caller.account_id))
