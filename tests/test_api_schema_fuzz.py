"""Schema fuzzing: schemathesis generates requests from the OpenAPI document.

Run against the real server (gunicorn, production settings), with a valid bearer
token, so generated input reaches the handlers. Every response must avoid 5xx and
conform to the schema: documented status code, content type and body shape.
"""

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.support.accounts import auth_headers
from tests.support.gunicorn import GunicornServer, production_env
from tests.support.settings import FAST_PASSWORD_HASHING_ENV

ACCOUNT_OPERATIONS = {"POST /api/v1/users", "GET /api/v1/users/me", "POST /api/v1/auth/token"}


@pytest.fixture(scope="module")
def live_server(database_url: str) -> Iterator[GunicornServer]:
    # Docs served, as in staging: the fuzzer reads the schema the server publishes.
    env = production_env(
        database_url, WEB_CONCURRENCY="2", DOCS_ENABLED="true", **FAST_PASSWORD_HASHING_ENV
    )
    with GunicornServer(env) as server:
        yield server


@pytest.fixture(scope="module")
def headers(live_server: GunicornServer) -> dict[str, str]:
    async def new_account() -> dict[str, str]:
        async with httpx.AsyncClient(base_url=live_server.base_url) as client:
            return await auth_headers(client)

    return asyncio.run(new_account())


@pytest.fixture(scope="module")
def api_schema(live_server: GunicornServer) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{live_server.base_url}/openapi.json")


def test_no_server_error_and_every_response_matches_the_schema(
    api_schema: schemathesis.BaseSchema, headers: dict[str, str]
) -> None:
    # schemathesis's own pytest plugin does not support this pytest yet, so the
    # operations are driven with hypothesis directly: same strategies, same checks.
    operations = []
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), result  # the schema itself must be valid
        operations.append(result.ok())
    # The account endpoints at least; every other operation the app serves is fuzzed too.
    assert {operation.label for operation in operations} >= ACCOUNT_OPERATIONS

    for operation, mode in itertools.product(operations, GenerationMode):
        takes_input = any(
            len(parameters)
            for parameters in (operation.path_parameters, operation.query, operation.body)
        )
        if mode is GenerationMode.NEGATIVE and not takes_input:
            continue  # nothing to make invalid (/health, /ready)

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
        def fuzz(case: schemathesis.Case[Any]) -> None:
            # Not "schema-valid input must be accepted": JSON Schema's email format is
            # looser than real address rules (reserved domains such as .test), so a 422
            # there is correct. Every other check stays: no 5xx, documented status,
            # content type, headers and body, and invalid input rejected.
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        fuzz()
