"""Log rendering and redaction, in process: what a line contains and what it never does."""

import json
import logging
import re
from typing import Any, TypedDict

import pytest
import structlog

from app.core.context import request_id_var
from app.core.logging import configure_logging
from app.core.redaction import REDACTED, redact
from tests.support.settings import make_settings


def test_sensitive_keys_are_masked_at_any_depth() -> None:
    event = {
        "event": "login",
        "password": "pw-1",
        "headers": {"Authorization": "Bearer t-1", "Set-Cookie": "s=1", "accept": "*/*"},
        "forms": [{"client_secret": "cs-1", "name": "kept"}],
        "api-key": "k-1",
        "asgi_headers": [(b"cookie", b"c=1"), (b"host", b"example")],
    }
    assert redact(event) == {
        "event": "login",
        "password": REDACTED,
        "headers": {"Authorization": REDACTED, "Set-Cookie": REDACTED, "accept": "*/*"},
        "forms": [{"client_secret": REDACTED, "name": "kept"}],
        "api-key": REDACTED,
        "asgi_headers": [(b"cookie", REDACTED), (b"host", b"example")],
    }


def test_json_lines_carry_request_id_and_mask_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(make_settings("postgresql://u@h/d", log_format="json"))
    token = request_id_var.set("rid-42")
    try:
        structlog.get_logger("test").info("signed in", password="pw-2", user="ada")
        logging.getLogger("third.party").warning("stdlib line", extra={"token": "t-2"})
    finally:
        request_id_var.reset(token)

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    assert [line["event"] for line in lines] == ["signed in", "stdlib line"]
    assert all(line["request_id"] == "rid-42" for line in lines)
    assert lines[0]["password"] == REDACTED
    assert lines[0]["user"] == "ada"
    assert lines[1]["logger"] == "third.party"
    assert lines[1]["token"] == REDACTED
    assert "pw-2" not in str(lines)
    assert "t-2" not in str(lines)


def test_tracebacks_never_include_local_values(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(make_settings("postgresql://u@h/d", log_format="json"))

    def fail(password: str) -> None:
        raise ValueError(f"password of length {len(password)} refused")

    try:
        fail("local-secret-77")
    except ValueError:
        structlog.get_logger("test").exception("failed")

    out = capsys.readouterr().out
    line = json.loads(out)
    assert line["exception"][0]["exc_type"] == "ValueError"
    assert "local-secret-77" not in out


class AccessFields(TypedDict):
    method: str
    path: str
    route: str
    status: int
    duration_ms: float
    client: str


ACCESS_FIELDS: AccessFields = {
    "method": "GET",
    "path": "/api/v1/orders/7",
    "route": "/api/v1/orders/{order_id}",
    "status": 200,
    "duration_ms": 1.25,
    "client": "10.0.0.9",
}


def access_lines(
    settings_overrides: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> list[Any]:
    """What ``AccessLog`` writes for one request at INFO and one at DEBUG, parsed."""
    settings = make_settings("postgresql://u@h/d", log_format="json", **settings_overrides)
    access_log = configure_logging(settings)
    access_log.write("info", request_id="rid-7", **ACCESS_FIELDS)
    access_log.write("debug", request_id="rid-8", **ACCESS_FIELDS)
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_access_line_has_the_shape_of_every_line(capsys: pytest.CaptureFixture[str]) -> None:
    (line,) = access_lines({}, capsys)  # the DEBUG one is not written at INFO
    structlog.get_logger("test").info("other", request_id="rid-7")
    other = json.loads(capsys.readouterr().out)
    assert line == {
        **ACCESS_FIELDS,
        "event": "request",
        "level": "info",
        "request_id": "rid-7",
        "timestamp": line["timestamp"],
    }
    # What every line carries, the access line carries the same way.
    assert set(other) == {"event", "level", "request_id", "timestamp"}
    assert line["level"] == other["level"]
    for timestamp in (line["timestamp"], other["timestamp"]):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z", timestamp)


def test_access_line_carries_bound_context_masked(capsys: pytest.CaptureFixture[str]) -> None:
    structlog.contextvars.bind_contextvars(tenant="acme", api_token="t-9")
    try:
        lines = access_lines({"log_level": "DEBUG"}, capsys)
    finally:
        structlog.contextvars.clear_contextvars()
    assert [line["request_id"] for line in lines] == ["rid-7", "rid-8"]
    assert [line["level"] for line in lines] == ["info", "debug"]
    assert all(line["tenant"] == "acme" for line in lines)
    assert all(line["api_token"] == REDACTED for line in lines)
