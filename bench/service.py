"""The service as deployed, plus the trivial route the benchmark compares with bare FastAPI.

The route is added after ``create_app``, so every middleware of the real stack applies.
"""

from fastapi import FastAPI

from app.core.config import get_settings_or_exit
from app.main import create_app
from bench.baselines import TRIVIAL_PATH, trivial


def service_app() -> FastAPI:
    app = create_app(get_settings_or_exit())
    app.add_api_route(TRIVIAL_PATH, trivial)
    return app
