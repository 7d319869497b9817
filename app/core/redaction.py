"""Masking of credentials before data leaves the process (log lines, error reports).

Matching is by key name, so a value is hidden wherever it appears: a header, a form
field, an extra on a log call or a nested dictionary.
"""

from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode

REDACTED = "[REDACTED]"

_SENSITIVE_KEY_PARTS = (
    "authorization",
    "cookie",
    "password",
    "passwd",
    "secret",
    "token",
    "key",  # api_key, apikey, private_key, x-api-key, ...
    "credential",
    "dsn",
)


# Values that cannot hold a key: most of what a log line carries, returned at once.
PLAIN_VALUES = frozenset({str, int, float, bool, type(None)})


@lru_cache(maxsize=4096)
def is_sensitive_key(key: str) -> bool:
    """Cached: log lines repeat the same few keys, and every line asks about each of them.

    Bounded, because the keys of a Sentry event's request data come from clients.
    """
    lowered = key.lower().replace("-", "_")
    return any(part in lowered for part in _SENSITIVE_KEY_PARTS)


def redact(value: Any) -> Any:
    """Return ``value`` with the values of sensitive keys masked, at any depth.

    A ``(name, value)`` pair counts as a key and its value, which covers ASGI and
    WSGI header lists.
    """
    if type(value) in PLAIN_VALUES:
        return value
    if isinstance(value, Mapping):
        return {
            key: REDACTED
            if isinstance(key, str) and is_sensitive_key(key)
            else item
            if type(item) in PLAIN_VALUES
            else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str | bytes):
        name = value[0].decode("latin-1") if isinstance(value[0], bytes) else value[0]
        return (value[0], REDACTED) if is_sensitive_key(name) else (value[0], redact(value[1]))
    if isinstance(value, list | tuple):
        return type(value)(redact(item) for item in value)
    return value


def redact_query_string(query: str) -> str:
    """Mask sensitive parameters of a URL query string (``?access_token=...``)."""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(key, REDACTED if is_sensitive_key(key) else value) for key, value in pairs])
