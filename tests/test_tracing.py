"""Tracing: request and SQL spans over OTLP, trace IDs in the log lines, nothing when off.

The end-to-end test runs the real server against a small OTLP/HTTP collector of the
test's own on loopback and decodes what the exporter sends. SQL spans are also checked
in process, with the SDK's in-memory exporter, where a test chooses their parent span
and can make a statement fail.
"""

import asyncio
import gzip
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import uuid4

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import ValidationError
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from app.db.engine import create_engine
from app.ops.tracing import add_trace_ids, instrument_engine, traces_endpoint
from app.users.models import User
from tests.support.gunicorn import GunicornServer, production_env
from tests.support.paths import ROOT
from tests.support.settings import FAST_PASSWORD_HASHING_ENV, make_settings

# An upstream service's trace context (W3C traceparent): the request must join its trace.
UPSTREAM_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
UPSTREAM_SPAN_ID = "00f067aa0ba902b7"
PROBE_PATHS = ("/health", "/ready")
UNTRACED_PATHS = (*PROBE_PATHS, "/metrics")
SPAN_KIND_SERVER = 2
SPAN_KIND_CLIENT = 3
STATUS_CODE_ERROR = 2


@pytest.fixture(autouse=True)
def no_ambient_otel_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's OTEL_* variables (a sampler, headers) must not steer these tests."""
    for name in list(os.environ):
        if name.startswith(("OTEL_", "FASTAPI_OTEL_")):
            monkeypatch.delenv(name)


@dataclass(frozen=True)
class ReceivedSpan:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    status_code: int
    attributes: dict[str, Any]
    resource: dict[str, Any]


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return None if kind is None else getattr(value, kind)


def _attributes(pairs: Any) -> dict[str, Any]:
    items: list[KeyValue] = list(pairs)
    return {pair.key: _value(pair.value) for pair in items}


class OtlpCollector:
    """An OTLP/HTTP receiver on loopback that keeps every trace export it is sent."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.exports: list[ExportTraceServiceRequest] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                collector.paths.append(self.path)
                collector.exports.append(ExportTraceServiceRequest.FromString(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")  # an empty ExportTraceServiceResponse
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the default handler writes a line to stderr per request."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "OtlpCollector":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def spans(self) -> list[ReceivedSpan]:
        return [
            ReceivedSpan(
                trace_id=span.trace_id.hex(),
                span_id=span.span_id.hex(),
                parent_span_id=span.parent_span_id.hex(),
                name=span.name,
                kind=span.kind,
                status_code=span.status.code,
                attributes=_attributes(span.attributes),
                resource=_attributes(resource_spans.resource.attributes),
            )
            for export in self.exports
            for resource_spans in export.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]


@pytest.fixture
def collector() -> Iterator[OtlpCollector]:
    with OtlpCollector() as running:
        yield running


def ancestors(span: ReceivedSpan, spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    by_id = {candidate.span_id: candidate for candidate in spans}
    chain = []
    while span.parent_span_id in by_id:
        span = by_id[span.parent_span_id]
        chain.append(span)
    return chain


def test_request_and_sql_spans_reach_the_collector_and_join_the_log_lines(
    database_url: str, collector: OtlpCollector
) -> None:
    email = f"traced-{uuid4().hex[:12]}@example.com"
    password = f"pw-{secrets.token_hex(12)}"
    query_secret = f"qs-{secrets.token_hex(8)}"
    env = production_env(
        database_url,
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
        # A standard exporter variable, read by the SDK itself: it still applies.
        OTEL_EXPORTER_OTLP_COMPRESSION="gzip",
        **FAST_PASSWORD_HASHING_ENV,
    )
    with GunicornServer(env) as server:
        for path in PROBE_PATHS:
            assert httpx.get(f"{server.base_url}{path}").status_code == 200, path
        assert httpx.get(server.metrics_url).status_code == 200
        created = httpx.post(
            f"{server.base_url}/api/v1/users",
            params={"access_token": query_secret},
            json={"email": email, "password": password},
            headers={"X-Request-ID": "traced-register-1"},
        )
        assert created.status_code == 201, created.text
        joined = httpx.get(
            f"{server.base_url}/api/v1/users/me",
            headers={
                "X-Request-ID": "traced-upstream-1",
                "traceparent": f"00-{UPSTREAM_TRACE_ID}-{UPSTREAM_SPAN_ID}-01",
            },
        )
        assert joined.status_code == 401
        # SIGTERM: the worker's lifespan shutdown flushes the batch of spans still queued.
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0

    spans = collector.spans()
    assert spans, f"no span arrived; server output:\n{server.output}"
    assert set(collector.paths) == {"/v1/traces"}
    assert {span.resource["service.name"] for span in spans} == {"fastapi-service"}
    assert {span.resource["deployment.environment.name"] for span in spans} == {"production"}
    assert {span.resource["service.version"] for span in spans} == {"0.1.0"}

    (register,) = [span for span in spans if span.name == "POST /api/v1/users"]
    assert register.kind == SPAN_KIND_SERVER
    assert register.parent_span_id == ""
    assert register.attributes["http.route"] == "/api/v1/users"
    assert register.attributes["http.response.status_code"] == 201
    assert query_secret not in register.attributes["url.query"]

    (insert,) = [span for span in spans if span.name == "INSERT users"]
    assert insert.kind == SPAN_KIND_CLIENT
    assert insert.trace_id == register.trace_id
    assert register in ancestors(insert, spans)
    assert insert.attributes["db.system.name"] == "postgresql"
    assert insert.attributes["db.namespace"] == make_url(database_url).database
    assert insert.attributes["db.collection.name"] == "users"
    assert insert.attributes["db.query.text"].startswith("INSERT INTO users ")
    lookups = [span for span in spans if span.name == "SELECT users"]
    assert lookups, "the duplicate-email check should have its span"
    assert all(register in ancestors(span, spans) for span in lookups)

    servers = [span for span in spans if span.kind == SPAN_KIND_SERVER]
    (upstream,) = [span for span in servers if span.trace_id == UPSTREAM_TRACE_ID]
    assert upstream.name == "GET /api/v1/users/me"
    assert upstream.parent_span_id == UPSTREAM_SPAN_ID

    # Probes and scrapes made no span, and their queries (the readiness check) no trace.
    assert {span.trace_id for span in spans} == {register.trace_id, UPSTREAM_TRACE_ID}
    assert not [span for span in spans if span.attributes.get("url.path") in UNTRACED_PATHS]
    every_value = json.dumps([span.attributes for span in spans])
    for value in (password, email, query_secret):
        assert value not in every_value

    lines = [json.loads(line) for line in server.lines if line.startswith("{")]
    register_lines = [line for line in lines if line.get("request_id") == "traced-register-1"]
    assert register_lines
    assert {line["trace_id"] for line in register_lines} == {register.trace_id}
    access = next(line for line in register_lines if line["event"] == "request")
    assert access["span_id"] == register.span_id
    upstream_lines = [line for line in lines if line.get("request_id") == "traced-upstream-1"]
    assert upstream_lines
    assert {line["trace_id"] for line in upstream_lines} == {UPSTREAM_TRACE_ID}
    started = next(line for line in lines if line["event"] == "worker started")
    assert "trace_id" not in started


@pytest.mark.anyio
async def test_sql_spans_nest_under_the_current_span_and_never_carry_values(
    database_url: str,
) -> None:
    provider = TracerProvider()
    exported = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    tracer = provider.get_tracer(__name__)
    engine = create_engine(make_settings(database_url))
    stop = instrument_engine(engine, provider)
    secret = f"value-{secrets.token_hex(8)}"

    async def query_inside(name: str) -> int:
        with tracer.start_as_current_span(name) as parent:
            async with engine.connect() as connection:
                # Sleeps, so the two callers' statements interleave on the event loop.
                await connection.execute(
                    text("SELECT pg_sleep(0.05), CAST(:value AS text)"), {"value": secret}
                )
                await connection.execute(select(User.id).where(User.email == secret))
            return parent.get_span_context().span_id

    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))  # no span around it: no trace
        first, second = await asyncio.gather(query_inside("first"), query_inside("second"))
        with tracer.start_as_current_span("failing"):
            async with engine.connect() as connection:
                with pytest.raises(DBAPIError):
                    await connection.execute(text("SELECT 1 / 0"))
    finally:
        stop()
    with tracer.start_as_current_span("after stop"):
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 2"))
    await engine.dispose()

    spans = exported.get_finished_spans()
    by_parent: dict[int, list[ReadableSpan]] = {}
    for span in spans:
        if span.kind == SpanKind.CLIENT:
            assert span.parent is not None, f"{span.name} started a trace of its own"
            by_parent.setdefault(span.parent.span_id, []).append(span)
    for parent_id in (first, second):
        sleep, lookup = by_parent.pop(parent_id)
        assert sleep.name == "SELECT"
        assert sleep.attributes is not None
        assert sleep.attributes["db.query.text"] == "SELECT pg_sleep(0.05), CAST($1 AS text)"
        assert lookup.name == "SELECT users"
        assert lookup.attributes is not None
        assert lookup.attributes["db.collection.name"] == "users"
    ((failed,),) = by_parent.values()
    assert failed.name == "SELECT"
    assert failed.status.status_code == StatusCode.ERROR
    assert failed.attributes is not None
    assert failed.attributes["db.response.status_code"] == "22012"  # division_by_zero
    assert failed.attributes["error.type"] == "22012"
    assert failed.events == ()  # no exception event: its message could quote a value
    assert secret not in json.dumps([dict(span.attributes or {}) for span in spans])


def test_log_processor_adds_the_current_trace_and_span_ids() -> None:
    tracer = TracerProvider().get_tracer(__name__)
    with tracer.start_as_current_span("request") as span:
        inside = add_trace_ids(None, "info", {"event": "inside"})
    context = span.get_span_context()
    assert inside == {
        "event": "inside",
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
    }
    assert add_trace_ids(None, "info", {"event": "outside"}) == {"event": "outside"}


def test_endpoint_is_the_otlp_http_base_url(database_url: str) -> None:
    for base in ("http://collector:4318", "http://collector:4318/"):
        settings = make_settings(database_url, otel_exporter_otlp_endpoint=base)
        assert settings.otel_exporter_otlp_endpoint is not None
        assert traces_endpoint(settings.otel_exporter_otlp_endpoint) == (
            "http://collector:4318/v1/traces"
        )
    with pytest.raises(ValidationError, match="otel_exporter_otlp_endpoint"):
        make_settings(database_url, otel_exporter_otlp_endpoint="collector:4318")
    unset = make_settings(database_url, otel_exporter_otlp_endpoint=" ")
    assert unset.otel_exporter_otlp_endpoint is None


_TRACING_OFF_SCRIPT = """
import asyncio, json, sys
import httpx
from asgi_lifespan import LifespanManager
from app.main import create_app

async def main() -> None:
    async with LifespanManager(create_app()) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            created = await client.post("/api/v1/users", json=json.loads(sys.argv[1]))
            assert created.status_code == 201, created.text

asyncio.run(main())
heavy = ("opentelemetry.sdk", "opentelemetry.exporter", "sentry_sdk")
print("LOADED=" + json.dumps(sorted(name for name in sys.modules if name.startswith(heavy))))
"""


def test_with_tracing_and_sentry_off_their_sdks_are_never_imported(database_url: str) -> None:
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "PASSWORD_HASH_TIME_COST": "1",
        "PASSWORD_HASH_MEMORY_KIB": "8192",
        "PASSWORD_HASH_PARALLELISM": "1",
    }
    body = {"email": f"untraced-{uuid4().hex[:12]}@example.com", "password": "pw-untraced-1"}
    result = subprocess.run(
        [sys.executable, "-c", _TRACING_OFF_SCRIPT, json.dumps(body)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    loaded = next(line for line in result.stdout.splitlines() if line.startswith("LOADED="))
    assert json.loads(loaded.removeprefix("LOADED=")) == []
    assert "trace_id" not in result.stdout
