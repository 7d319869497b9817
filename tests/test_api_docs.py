"""Interactive docs and the OpenAPI schema: served in development and staging, not in
production unless ``DOCS_ENABLED`` says so; tooling always has ``app.openapi()``."""

import secrets

import pytest

from app.core.config import Settings
from app.main import create_app
from tests.support.clients import app_client
from tests.support.problems import assert_problem
from tests.support.settings import TEST_REDIS_URL, make_settings

pytestmark = pytest.mark.anyio

DOCS_PATHS = ("/docs", "/redoc", "/openapi.json")


def deployed(database_url: str, environment: str = "production", **overrides: object) -> Settings:
    """Settings as a deployment has them: real secrets, shared rate-limit store."""
    return make_settings(
        database_url,
        environment=environment,
        jwt_secret_key=secrets.token_hex(32),
        rate_limit_storage_url=TEST_REDIS_URL,
        **overrides,
    )


async def test_production_serves_no_docs_or_schema_by_default(database_url: str) -> None:
    async with app_client(deployed(database_url)) as client:
        for path in DOCS_PATHS:
            assert_problem(await client.get(path), 404)


async def test_docs_enabled_serves_them_in_deployed(database_url: str) -> None:
    async with app_client(deployed(database_url, docs_enabled=True)) as client:
        for path in DOCS_PATHS:
            assert (await client.get(path)).status_code == 200
        schema = (await client.get("/openapi.json")).json()
    assert "/api/v1/users/me" in schema["paths"]


async def test_docs_are_served_in_development_and_staging(database_url: str) -> None:
    for settings in (
        make_settings(database_url, environment="development"),
        deployed(database_url, "staging"),
    ):
        async with app_client(settings) as client:
            for path in DOCS_PATHS:
                assert (await client.get(path)).status_code == 200, (settings.environment, path)


async def test_docs_disabled_turns_them_off_anywhere(database_url: str) -> None:
    async with app_client(make_settings(database_url, docs_enabled=False)) as client:
        for path in DOCS_PATHS:
            assert_problem(await client.get(path), 404)


def test_the_schema_stays_available_to_tooling_with_docs_off(database_url: str) -> None:
    schema = create_app(deployed(database_url)).openapi()
    assert {"/api/v1/users/me", "/api/v1/auth/token"} <= schema["paths"].keys()
