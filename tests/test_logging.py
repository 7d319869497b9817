"""Log rendering and redaction, in process: what a line contains and what it never does."""

import json
import logging

import pytest
import structlog

from app.core.context import request_id_var
from app.core.logging import configure_logging
from app.core.redaction import REDACTED, redact
from tests.conftest import make_settings


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
