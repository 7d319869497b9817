"""Report "not ready" from the moment the process is asked to stop.

The server (uvicorn under gunicorn) installs its own SIGTERM handler to shut down
gracefully; this chains in front of it, so readiness flips to 503 at once while
in-flight requests still finish.
"""

import signal
import threading
from collections.abc import Callable
from types import FrameType

import structlog

from app.ops.readiness import ReadinessProbe

logger = structlog.get_logger(__name__)

SignalHandler = Callable[[int, FrameType | None], object]


def drain_on_sigterm(probe: ReadinessProbe) -> Callable[[], None]:
    """Chain a draining step before the server's SIGTERM handler; return the undo.

    Does nothing when no server handler is installed (a bare process would simply
    die on SIGTERM) or when not on the main thread (signals cannot be set there).
    """
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous) or threading.current_thread() is not threading.main_thread():
        return lambda: None
    server_handler: SignalHandler = previous

    def drain_then_stop(signum: int, frame: FrameType | None) -> None:
        probe.begin_draining()
        logger.info("shutdown requested, readiness now reports draining")
        server_handler(signum, frame)

    signal.signal(signal.SIGTERM, drain_then_stop)

    def restore() -> None:
        if signal.getsignal(signal.SIGTERM) is drain_then_stop:
            signal.signal(signal.SIGTERM, server_handler)

    return restore
