"""What an error report carries: the request ID, and no credential of any kind.

The scrubber is the ``before_send`` hook Sentry calls for every event; here it is fed
an event shaped like the ones the SDK builds for a failed request.
"""

from app.core.context import request_id_var
from app.core.redaction import REDACTED
from app.core.sentry import scrub_event


def test_event_is_tagged_with_the_request_id_and_stripped_of_credentials() -> None:
    event = {
        "exception": {"values": [{"type": "RuntimeError", "value": "boom"}]},
        "request": {
            "url": "http://api.example/api/v1/items",
            "query_string": "access_token=qs-secret&page=2",
            "headers": {
                "Authorization": "Bearer h-secret",
                "Cookie": "s=c-secret",
                "Accept": "*/*",
            },
            "cookies": {"session": "c-secret"},
            "data": {"email": "a@example.com", "password": "p-secret"},
        },
        "extra": {"client_secret": "x-secret"},
        "breadcrumbs": {"values": [{"data": {"api_key": "k-secret", "status": 200}}]},
    }
    token = request_id_var.set("rid-sentry-1")
    try:
        scrubbed = scrub_event(event, None)
    finally:
        request_id_var.reset(token)

    assert scrubbed["tags"]["request_id"] == "rid-sentry-1"
    assert scrubbed["exception"] == event["exception"]
    request = scrubbed["request"]
    assert (
        request["query_string"]
        == f"access_token={REDACTED.replace('[', '%5B').replace(']', '%5D')}&page=2"
    )
    assert request["headers"] == {"Authorization": REDACTED, "Cookie": REDACTED, "Accept": "*/*"}
    assert request["cookies"] == REDACTED
    assert request["data"] == {"email": "a@example.com", "password": REDACTED}
    assert scrubbed["breadcrumbs"]["values"][0]["data"] == {"api_key": REDACTED, "status": 200}
    for value in ("qs-secret", "h-secret", "c-secret", "p-secret", "x-secret", "k-secret"):
        assert value not in str(scrubbed)
