"""The one assertion every error response must pass: an RFC 9457 problem document."""

from typing import Any

import httpx

from app.core.errors import PROBLEM_MEDIA_TYPE


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response is a problem with this status and the request's ID; its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    for field in ("type", "title", "detail", "instance"):
        assert isinstance(body[field], str)
    assert body["request_id"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    if status == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"
    return body
