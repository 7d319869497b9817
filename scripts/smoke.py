#!/usr/bin/env python3
"""Smoke test for a deployed service: run after every deploy, before traffic counts on it.

    python3 scripts/smoke.py https://api.staging.example.com      (or: make smoke URL=...)

Checks, in order: ``/health`` and ``/ready`` answer 200 with JSON; ``/openapi.json``
lists the key endpoints (the GET operations without path parameters), or, where the
schema is not served, a built-in list does; each key endpoint answers as declared (401
with a problem document without a token, its success status with one, taken from
``SMOKE_TOKEN``); an ``X-Request-ID`` sent comes back; an unknown path is a 404 problem.

One line per passed check on stdout. The first failure ends the run: one line naming
it on stderr, exit status 1 (2 for a usage error). Reads only, changes nothing.

Standard library only and no imports from the project, so it runs from a bare checkout,
a CI runner or a bastion host with any Python 3.9+. Redirects are reported, not
followed: the token is never sent anywhere but the URL given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from typing import Any

PROBLEM_TYPE = "application/problem+json"
REQUEST_ID_HEADER = "X-Request-ID"
SCHEMA_PATH = "/openapi.json"
# Checked when the schema is not served (docs turned off in production).
# (A list: with one entry left, as after `make init EXAMPLE=no`, it keeps its layout.)
FALLBACK_ENDPOINTS = [
    ("/api/v1/users/me", True),
    ("/api/v1/items", True),  # example:items
]


class CheckFailedError(Exception):
    """A check did not pass; the message says what was wrong."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: Message
    body: bytes
    elapsed_ms: float

    @property
    def media_type(self) -> str:
        return self.headers.get_content_type()

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise CheckFailedError(f"body is not JSON: {self.body[:80]!r}") from None


@dataclass(frozen=True)
class Endpoint:
    path: str
    secured: bool
    declared: frozenset[int]  # every status the schema declares; empty for the fallback

    def expected_status(self, authenticated: bool) -> int:
        if self.secured and not authenticated:
            return 401
        successes = sorted(status for status in self.declared if 200 <= status < 300)
        return successes[0] if successes else 200


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None  # the 3xx surfaces as an HTTPError and is reported


class Client:
    def __init__(self, base_url: str, token: str | None, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirects)

    def get(
        self, path: str, *, authenticated: bool = False, headers: dict[str, str] | None = None
    ) -> Response:
        request = urllib.request.Request(  # noqa: S310  (the scheme is checked in main)
            self.base_url + path, headers={"Accept": "application/json", **(headers or {})}
        )
        if authenticated and self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        started = time.perf_counter()
        try:
            with self._opener.open(request, timeout=self.timeout) as reply:
                status, reply_headers, body = reply.status, reply.headers, reply.read()
        except urllib.error.HTTPError as error:
            status, reply_headers, body = error.code, error.headers, error.read()
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise CheckFailedError(f"GET {path}: cannot connect ({reason})") from None
        elapsed_ms = (time.perf_counter() - started) * 1000
        if 300 <= status < 400:
            location = reply_headers.get("Location", "?")
            raise CheckFailedError(f"GET {path}: {status} redirect to {location} (not followed)")
        return Response(status, reply_headers, body, elapsed_ms)


def expect(response: Response, path: str, status: int, media_type: str) -> None:
    if response.status != status:
        raise CheckFailedError(f"GET {path}: {response.status}, expected {status}")
    if response.media_type != media_type:
        raise CheckFailedError(f"GET {path}: {response.media_type}, expected {media_type}")


def check_probe(client: Client, path: str, status_field: str) -> str:
    response = client.get(path)
    expect(response, path, 200, "application/json")
    body = response.json()
    if not isinstance(body, dict) or body.get("status") != status_field:
        raise CheckFailedError(f"GET {path}: {body!r}, expected status {status_field!r}")
    compact = json.dumps(body, separators=(",", ":"))
    return f"GET {path} 200 {compact} ({response.elapsed_ms:.0f} ms)"


def declared_statuses(operation: dict[str, Any]) -> frozenset[int]:
    return frozenset(int(code) for code in operation.get("responses", {}) if code.isdigit())


def key_endpoints(client: Client) -> tuple[list[Endpoint], str]:
    """The endpoints the schema declares, or the built-in list when it is not served."""
    response = client.get(SCHEMA_PATH)
    if response.status == 404:
        endpoints = [Endpoint(path, secured, frozenset()) for path, secured in FALLBACK_ENDPOINTS]
        return endpoints, f"GET {SCHEMA_PATH} 404: not served, using the built-in list"
    expect(response, SCHEMA_PATH, 200, "application/json")
    schema = response.json()
    paths = schema.get("paths") if isinstance(schema, dict) else None
    if not isinstance(paths, dict):
        raise CheckFailedError(f"GET {SCHEMA_PATH}: no 'paths' in the schema")
    default_security = schema.get("security") or []
    endpoints = [
        Endpoint(
            path,
            secured=bool(operation.get("security", default_security)),
            declared=declared_statuses(operation),
        )
        for path, operations in sorted(paths.items())
        if "{" not in path and isinstance(operation := operations.get("get"), dict)
    ]
    if not endpoints:
        raise CheckFailedError(f"GET {SCHEMA_PATH}: declares no GET endpoint to check")
    return endpoints, f"GET {SCHEMA_PATH} 200: {len(endpoints)} key endpoints"


def check_endpoint(client: Client, endpoint: Endpoint) -> str:
    authenticated = client.token is not None
    expected = endpoint.expected_status(authenticated)
    response = client.get(endpoint.path, authenticated=endpoint.secured)
    media_type = "application/json" if 200 <= expected < 300 else PROBLEM_TYPE
    if expected == 204:
        if response.status != 204:
            raise CheckFailedError(f"GET {endpoint.path}: {response.status}, expected 204")
    else:
        expect(response, endpoint.path, expected, media_type)
        response.json()
    if endpoint.declared and response.status not in endpoint.declared:
        raise CheckFailedError(f"GET {endpoint.path}: {response.status} is not declared")
    who = "with the token" if endpoint.secured and authenticated else "anonymous"
    return f"GET {endpoint.path} {response.status} {who} ({response.elapsed_ms:.0f} ms)"


def check_request_id(response: Response, sent: str) -> str:
    echoed = response.headers.get(REQUEST_ID_HEADER)
    if echoed != sent:
        raise CheckFailedError(f"sent {REQUEST_ID_HEADER}: {sent}, got back {echoed!r}")
    return f"{REQUEST_ID_HEADER} {sent} came back"


def check_not_found(response: Response, path: str) -> str:
    expect(response, path, 404, PROBLEM_TYPE)
    problem = response.json()
    if not isinstance(problem, dict) or problem.get("status") != 404:
        raise CheckFailedError(f"GET {path}: problem document {problem!r} lacks status 404")
    return f"GET {path} 404 {PROBLEM_TYPE}"


@contextmanager
def check(name: str) -> Iterator[Callable[[str], None]]:
    """One check: the block reports its line when it passes; a failure is named after it."""
    try:
        yield lambda detail: print(f"ok   {name:<10} {detail}", flush=True)
    except CheckFailedError as failure:
        raise CheckFailedError(f"FAIL {name}: {failure}") from None


def run(client: Client) -> None:
    """Every check in order; raises CheckFailedError, naming the check, at the first failure."""
    with check("health") as passed:
        passed(check_probe(client, "/health", "ok"))
    with check("ready") as passed:
        passed(check_probe(client, "/ready", "ready"))
    with check("openapi") as passed:
        endpoints, summary = key_endpoints(client)
        passed(summary)
    for endpoint in endpoints:
        with check("endpoint") as passed:
            passed(check_endpoint(client, endpoint))
    # One request to a path that cannot exist: its request ID, then its 404 problem.
    sent = f"smoke-{uuid.uuid4().hex}"
    unknown = f"/smoke-test-{uuid.uuid4().hex}"
    with check("request-id") as passed:
        response = client.get(unknown, headers={REQUEST_ID_HEADER: sent})
        passed(check_request_id(response, sent))
    with check("not-found") as passed:
        passed(check_not_found(response, unknown))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the service's base URL, e.g. https://api.example.com")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    args = parser.parse_args(argv)
    if not args.url.startswith(("http://", "https://")):
        print(f"smoke: URL must start with http:// or https://, got {args.url!r}", file=sys.stderr)
        return 2
    client = Client(args.url, os.environ.get("SMOKE_TOKEN") or None, args.timeout)
    try:
        run(client)
    except CheckFailedError as failure:
        print(failure, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
