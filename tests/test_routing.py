"""How resources' routes join the app: first in its table, and never silently unguarded."""

import pytest
from fastapi import APIRouter, Depends, FastAPI
from starlette.routing import Route

from app.core.routing import API_PREFIX, add_routes, resource_router
from app.main import create_app
from tests.support.settings import make_settings


def test_api_routes_are_tried_before_the_docs() -> None:
    app = create_app(make_settings("postgresql://u@h/d"))
    paths = [route.path for route in app.router.routes if isinstance(route, Route)]
    first_other = paths.index("/openapi.json")
    assert all(path.startswith(API_PREFIX) for path in paths[:first_other])
    assert f"{API_PREFIX}/users/me" in paths[:first_other]


def test_an_app_with_dependencies_of_its_own_is_refused() -> None:
    """They would silently not run on the added routes: a missing check, not a slow one."""

    async def require_api_key() -> None:
        return None

    app = FastAPI(dependencies=[Depends(require_api_key)])
    router: APIRouter = resource_router("orders")
    with pytest.raises(ValueError, match="dependencies"):
        add_routes(app, [router])
