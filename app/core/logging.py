"""Structured logging: one line per event, one shape for every logger in the process.

structlog renders our own events; the standard library's loggers (uvicorn, gunicorn,
SQLAlchemy, alembic) are routed through the same processors, so in production every
line the process prints is one JSON object carrying the request ID.
"""

import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
import structlog
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, Processor, WrappedLogger

from app.core.config import Settings
from app.core.context import request_id_var
from app.core.redaction import PLAIN_VALUES, is_sensitive_key, redact
from app.core.resources import Resource

# Our middleware writes the access log; uvicorn's own would be a second, unstructured one.
_SILENCED_LOGGERS = ("uvicorn.access", "gunicorn.access")
_SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "gunicorn.error")


def add_request_id(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    request_id = request_id_var.get()
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    return event_dict


def drop_color_message(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """uvicorn passes an ANSI-coloured copy of its message as an extra; it is noise here."""
    event_dict.pop("color_message", None)
    return event_dict


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Mask every credential the event carries, at any depth.

    Nearly every line is plain values under harmless names: those are checked key by
    key (the answer for each name is cached) and passed on as they are, uncopied.
    """
    for key, value in event_dict.items():
        if type(value) not in PLAIN_VALUES or is_sensitive_key(key):
            redacted: EventDict = redact(event_dict)
            return redacted
    return event_dict


def add_utc_timestamp(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """When the event happened, as a datetime: the JSON renderer writes it as ISO 8601
    (``2026-01-31T12:00:00.123456Z``) in a fraction of the time formatting it here takes.
    """
    event_dict["timestamp"] = datetime.now(UTC)
    return event_dict


def _json_bytes(event_dict: EventDict) -> bytes:
    return orjson.dumps(event_dict, default=repr, option=orjson.OPT_UTC_Z)


def _json_dumps(event_dict: EventDict, **_: Any) -> str:
    return _json_bytes(event_dict).decode()


class AccessLog:
    """Writes the access line, one per request, in the shape of every other line.

    Through structlog the line cost more than all the rest the middleware does per
    request: the bound logger's machinery, a context merge, a redaction pass and five
    processors. Its fields are fixed, harmless (the signature admits no others) and at
    hand, so in JSON it is rendered from them directly, with the same serializer, to the
    same stream. Where structlog would add to it (context bound with
    ``structlog.contextvars``, trace IDs with tracing on) or the format is the
    console's, it goes through structlog as any line does. ``configure_logging`` makes
    the one that matches its configuration.
    """

    def __init__(self, level: int, *, direct: bool) -> None:
        """``direct``: the configured chain adds nothing to a plain JSON line but context."""
        self._writes = {"info": level <= logging.INFO, "debug": level <= logging.DEBUG}
        self._direct = direct
        self._logger = structlog.get_logger("app.access")

    def write(
        self,
        level: Literal["info", "debug"],
        *,
        request_id: str,
        method: str,
        path: str,
        route: str,
        status: int | None,
        duration_ms: float,
        client: str | None,
    ) -> None:
        if not self._writes[level]:
            return
        fields = {
            "method": method,
            "path": path,
            "route": route,
            "status": status,
            "duration_ms": duration_ms,
            "client": client,
        }
        if not self._direct or structlog.contextvars.get_contextvars():
            getattr(self._logger, level)("request", **fields, request_id=request_id)
            return
        line = {**fields, "event": "request", "level": level, "timestamp": datetime.now(UTC)}
        line["request_id"] = request_id
        sys.stdout.buffer.write(_json_bytes(line) + b"\n")
        sys.stdout.buffer.flush()


def _renderer(settings: Settings) -> list[Processor]:
    # Locals can hold passwords and tokens: tracebacks carry frames, never values.
    if settings.resolved_log_format == "console":
        return [
            structlog.dev.ConsoleRenderer(
                colors=sys.stdout.isatty(), exception_formatter=structlog.dev.plain_traceback
            )
        ]
    tracebacks = structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))
    return [tracebacks, structlog.processors.JSONRenderer(serializer=_json_dumps)]


def configure_logging(
    settings: Settings, *, extra_processors: Sequence[Processor] = ()
) -> AccessLog:
    """Configure structlog and the standard library for this process; the access log.

    Called by the gunicorn master and again in each worker's lifespan, with the same
    settings. Loggers cache their configuration on first use (it keeps the per-call
    cost down), so a later call with other settings only reaches loggers not yet used.
    ``extra_processors`` run last before rendering, on every line (the worker adds
    trace IDs this way when tracing is on).
    """
    level = logging.getLevelNamesMapping()[settings.log_level]
    console = settings.resolved_log_format == "console"
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        # Before the fields added below, which are ours and never secret.
        redact_secrets,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True) if console else add_utc_timestamp,
        add_request_id,
        *extra_processors,
    ]
    renderer = _renderer(settings)

    structlog.configure(
        processors=[*shared, *renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # One write() per line (print() makes two), so lines from several worker
        # processes sharing stdout never interleave.
        logger_factory=structlog.WriteLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_logger_name,
                structlog.stdlib.ExtraAdder(),
                drop_color_message,
                *shared,
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # Servers give their loggers handlers of their own (uvicorn's worker copies
    # gunicorn's); pointing each at this handler, not at the root, avoids doubled lines.
    for name in _SERVER_LOGGERS:
        server_logger = logging.getLogger(name)
        server_logger.handlers = [handler]
        server_logger.propagate = False
    # Python warnings (deprecations, SQLAlchemy's) become log lines of the same shape.
    logging.captureWarnings(True)
    for name in _SILENCED_LOGGERS:
        logging.getLogger(name).disabled = True
    # SQLAlchemy logs every statement at INFO: far too much for a service log.
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    return AccessLog(level, direct=not console and not extra_processors)


ACCESS_LOG = Resource[AccessLog]("access_log")
