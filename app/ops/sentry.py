"""Error reporting to Sentry, off unless ``SENTRY_DSN`` is set.

Nothing here runs per request: the request ID and the scrubbing are applied in
``before_send``, only when an event is actually sent. Without a DSN the SDK is never
imported: it would cost each worker 5 MB and the start-up a twentieth of a second.
"""

import sys
from typing import Any

from app.core.config import Settings
from app.core.context import request_id_var
from app.core.redaction import redact, redact_query_string


def scrub_event(event: Any, _hint: Any) -> Any:
    """Tag the event with the request ID and mask every credential it carries."""
    request_id = request_id_var.get()
    if request_id is not None:
        event.setdefault("tags", {})["request_id"] = request_id
    request = event.get("request")
    if isinstance(request, dict) and isinstance(request.get("query_string"), str):
        request["query_string"] = redact_query_string(request["query_string"])
    return redact(event)


def init_sentry(settings: Settings) -> None:
    if settings.sentry_dsn is None:
        return
    import sentry_sdk  # noqa: PLC0415

    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.environment,
        release=settings.app_version,
        send_default_pii=False,
        include_local_variables=False,
        traces_sample_rate=settings.sentry_traces_sample_rate,
        profiles_sample_rate=settings.sentry_profiles_sample_rate,
        before_send=scrub_event,
        before_send_transaction=scrub_event,
    )


def report_exception(exc: BaseException) -> None:
    """Send ``exc`` to Sentry; a no-op when Sentry is off."""
    sentry_sdk = sys.modules.get("sentry_sdk")  # imported by init_sentry, if it ran
    if sentry_sdk is not None:
        sentry_sdk.capture_exception(exc)


def flush_sentry() -> None:
    """Send what is queued before the worker exits (a no-op when Sentry is off)."""
    sentry_sdk = sys.modules.get("sentry_sdk")
    if sentry_sdk is not None and sentry_sdk.is_initialized():
        sentry_sdk.flush(timeout=2)
