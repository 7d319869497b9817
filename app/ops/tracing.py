"""OpenTelemetry tracing, off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

Request spans come from FastAPI's native telemetry, which switches itself on once a
real tracer provider is the global one; :func:`start_tracing` installs that provider in
each worker's lifespan, after gunicorn has forked, so the exporter's thread belongs to
the process that fills its queue. SQL spans come from SQLAlchemy's cursor events here
(the contrib instrumentation packages do not install beside this FastAPI): async
SQLAlchemy runs those events in a greenlet that shares the calling task's contextvars,
so the span current in the endpoint becomes the parent of each query's span.

With tracing off, nothing of the SDK or the exporter is imported: the OpenTelemetry API
that FastAPI already imports is all this module needs until tracing starts.

What a span may carry: statements as SQLAlchemy sends them (bound values are ``$n``
placeholders) and never their parameters or the database's error messages, which can
quote values; only the SQLSTATE. Query-string credentials are masked on request spans.
A query with no traced request around it (the readiness probe, start-up work) starts no
trace of its own, so probes do not fill the tracing backend with one-span traces.
"""

import weakref
from collections.abc import Callable, Collection, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

import structlog
from opentelemetry import trace
from opentelemetry.trace import (
    Span,
    SpanKind,
    StatusCode,
    TracerProvider,
    format_span_id,
    format_trace_id,
)
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, ExceptionContext, ExecutionContext
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.expression import TableClause
from structlog.typing import EventDict, WrappedLogger

from app.core.redaction import redact_query_string

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import Span as SdkSpan
    from opentelemetry.sdk.trace import SpanProcessor

    from app.core.config import Settings

logger = structlog.get_logger(__name__)

DB_SYSTEM = "postgresql"
_TRACES_PATH = "/v1/traces"


def untraced_paths(paths: Collection[str]) -> Callable[[MutableMapping[str, Any]], bool]:
    """An ``exclude`` for ``FastAPI(telemetry=...)``: no spans for these exact paths.

    Probes and scrapes arrive every few seconds from every kubelet and Prometheus; a
    trace for each would bury the requests people look for.
    """
    excluded = frozenset(paths)

    def untraced(scope: MutableMapping[str, Any]) -> bool:
        return scope.get("path") in excluded

    return untraced


def add_trace_ids(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: the current span's trace and span IDs, as a backend shows them.

    Hex strings (32 and 16 characters), so a log line can be pasted into a trace search.
    """
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", format_trace_id(context.trace_id))
        event_dict.setdefault("span_id", format_span_id(context.span_id))
    return event_dict


def traces_endpoint(base: str) -> str:
    """The traces URL for an OTLP/HTTP base endpoint, as ``OTEL_EXPORTER_OTLP_ENDPOINT`` means it.

    The specification appends ``v1/traces`` to the base, whether or not it ends in a slash.
    """
    return base.rstrip("/") + _TRACES_PATH


class _SqlSpans:
    """One CLIENT span per statement sent, ended when the cursor returns or fails."""

    _EVENTS = ("before_cursor_execute", "after_cursor_execute", "handle_error")

    def __init__(self, engine: Engine, tracer_provider: TracerProvider) -> None:
        self._tracer = tracer_provider.get_tracer(__name__)
        url = engine.url
        attributes: dict[str, str | int] = {"db.system.name": DB_SYSTEM}
        if url.database:
            attributes["db.namespace"] = url.database
        if url.host:
            attributes["server.address"] = url.host
            attributes["server.port"] = url.port or 5432
        self._attributes = attributes
        # Keyed weakly: a statement whose end event never comes cannot leak its span.
        self._open: weakref.WeakKeyDictionary[ExecutionContext, Span] = weakref.WeakKeyDictionary()

    def before_cursor_execute(
        self,
        _conn: Connection,
        _cursor: Any,
        statement: str,
        _parameters: Any,
        context: ExecutionContext | None,
        _executemany: bool,
    ) -> None:
        if context is None or not trace.get_current_span().get_span_context().is_valid:
            return
        attributes: dict[str, str | int] = {**self._attributes, "db.query.text": statement}
        operation = statement.split(None, 1)[0] if statement.strip() else ""
        name = DB_SYSTEM
        if operation.isalpha():
            attributes["db.operation.name"] = operation
            name = operation
            collection = _collection_name(context)
            if collection is not None:
                attributes["db.collection.name"] = collection
                name = f"{operation} {collection}"
        self._open[context] = self._tracer.start_span(
            name, kind=SpanKind.CLIENT, attributes=attributes
        )

    def after_cursor_execute(
        self,
        _conn: Connection,
        _cursor: Any,
        _statement: str,
        _parameters: Any,
        context: ExecutionContext | None,
        _executemany: bool,
    ) -> None:
        span = self._open.pop(context, None) if context is not None else None
        if span is not None:
            span.end()

    def handle_error(self, exception_context: ExceptionContext) -> None:
        context = exception_context.execution_context
        span = self._open.pop(context, None) if context is not None else None
        if span is None:
            return
        error = exception_context.original_exception
        # asyncpg's errors (as SQLAlchemy adapts them) carry the SQLSTATE; their message
        # can quote a value (a duplicate key's email), so it is never recorded.
        sqlstate = getattr(error, "sqlstate", None)
        if isinstance(sqlstate, str):
            span.set_attribute("db.response.status_code", sqlstate)
        error_type = sqlstate if isinstance(sqlstate, str) else _qualified_name(error)
        span.set_attribute("error.type", error_type)
        span.set_status(StatusCode.ERROR)
        span.end()

    def attach(self, engine: Engine) -> Callable[[], None]:
        for name in self._EVENTS:
            event.listen(engine, name, getattr(self, name))

        def detach() -> None:
            for name in self._EVENTS:
                if event.contains(engine, name, getattr(self, name)):
                    event.remove(engine, name, getattr(self, name))

        return detach


def _collection_name(context: ExecutionContext) -> str | None:
    """The one table a statement targets, read from the compiled statement, else None.

    Nothing is parsed out of the SQL text: DML names its table, and a SELECT counts only
    when its FROM is a single table (joins and subqueries have no one target).
    """
    compiled = context.compiled
    if compiled is None:  # exec_driver_sql: no compiled form to read
        return None
    target = getattr(compiled.statement, "table", None)
    if target is None:
        froms: Sequence[Any] = getattr(compiled.compile_state, "froms", ())
        target = froms[0] if len(froms) == 1 else None
    return target.fullname if isinstance(target, TableClause) else None


def _qualified_name(error: BaseException) -> str:
    cls = type(error)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def instrument_engine(engine: AsyncEngine, tracer_provider: TracerProvider) -> Callable[[], None]:
    """Trace the statements ``engine`` sends; return the function that stops it."""
    spans = _SqlSpans(engine.sync_engine, tracer_provider)
    return spans.attach(engine.sync_engine)


def start_tracing(settings: "Settings", engine: AsyncEngine) -> Callable[[], None]:
    """Export request and SQL spans over OTLP/HTTP; return the function that flushes and stops.

    A no-op when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is unset. Once per process (each gunicorn
    worker): OpenTelemetry allows one global tracer provider for a process's lifetime.
    Sampling, export headers, timeout and compression follow the SDK's standard variables
    (``OTEL_TRACES_SAMPLER``, ``OTEL_EXPORTER_OTLP_HEADERS``, ...); resource attributes can
    be added with ``OTEL_RESOURCE_ATTRIBUTES``.
    """
    if settings.otel_exporter_otlp_endpoint is None:
        return _nothing_to_stop

    # Imported here, not at the top: with tracing off these modules are never loaded.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    service_name = settings.otel_service_name or settings.app_name
    resource = Resource.create(
        {
            "service.name": service_name,
            "service.version": settings.app_version,
            "deployment.environment.name": settings.environment,
        }
    )
    provider = SdkTracerProvider(resource=resource)
    provider.add_span_processor(_query_string_redactor())
    provider.add_span_processor(
        BatchSpanProcessor(
            OTLPSpanExporter(endpoint=traces_endpoint(settings.otel_exporter_otlp_endpoint))
        )
    )
    trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is not provider:
        # Something (a second start in this process, FASTAPI_OTEL_AUTO_CONFIGURE) set
        # one first. Spans split over two providers would be worse than no change.
        provider.shutdown()
        logger.warning("tracing not started: this process already has a tracer provider")
        return _nothing_to_stop

    stop_sql_spans = instrument_engine(engine, provider)
    logger.info("tracing started", service_name=service_name)

    def stop_tracing() -> None:
        """Stop tracing queries, then send the spans still queued (blocks, bounded by the SDK)."""
        stop_sql_spans()
        provider.shutdown()

    return stop_tracing


def _nothing_to_stop() -> None:
    """What there is to stop when tracing never started."""


def _query_string_redactor() -> "SpanProcessor":
    """A span processor masking credentials in ``url.query`` (``?access_token=...``).

    FastAPI records the query string on request spans, masking only cloud signature
    parameters; this applies the rules the log lines and error reports follow. Built on
    demand because its base class is the SDK's.
    """
    from opentelemetry.sdk import trace as sdk_trace  # noqa: PLC0415

    class QueryStringRedactor(sdk_trace.SpanProcessor):
        def on_start(self, span: "SdkSpan", parent_context: "Context | None" = None) -> None:  # noqa: ARG002
            query = span.attributes.get("url.query") if span.attributes else None
            if isinstance(query, str):
                span.set_attribute("url.query", redact_query_string(query))

    return QueryStringRedactor()
