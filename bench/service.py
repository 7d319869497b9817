"""The service as deployed, plus the trivial route the benchmark compares with bare FastAPI.

The route is added after ``create_app`` the way a resource's routes are
(``add_routes``), so every middleware of the real stack applies to it and it sits where
API routes sit: bare FastAPI serves it as its second route, the service as its first.
"""

from fastapi import APIRouter, FastAPI

from app.core.config import get_settings_or_exit
from app.core.routing import add_routes
from app.main import create_app
from bench.baselines import TRIVIAL_PATH, trivial


def service_app() -> FastAPI:
    app = create_app(get_settings_or_exit())
    router = APIRouter()
    router.add_api_route(TRIVIAL_PATH, trivial)
    add_routes(app, [router])
    return app
