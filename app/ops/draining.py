"""Report "not ready" from the moment the process is asked to stop, then stop.

The server (uvicorn under gunicorn) installs its own SIGTERM handler, which closes
the listening socket at once. This chains in front of it: readiness flips to 503
first, the worker keeps serving for ``SHUTDOWN_DRAIN_SECONDS`` so load balancers
see the 503 and move traffic away, and only then the server's graceful shutdown
starts. A second SIGTERM skips the wait.
"""

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType

import structlog

from app.ops.readiness import ReadinessProbe

logger = structlog.get_logger(__name__)

SignalHandler = Callable[[int, FrameType | None], object]


def drain_on_sigterm(probe: ReadinessProbe, drain_seconds: float) -> Callable[[], None]:
    """Chain a draining step before the server's SIGTERM handler; return the undo.

    Does nothing when no server handler is installed (a bare process would simply
    die on SIGTERM) or when not on the main thread (signals cannot be set there).
    """
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous) or threading.current_thread() is not threading.main_thread():
        return lambda: None
    server_handler: SignalHandler = previous
    loop = asyncio.get_running_loop()

    def drain_then_stop(signum: int, frame: FrameType | None) -> None:
        # A signal handler interrupts this thread anywhere, perhaps while it holds a
        # lock (the logger's, the metrics files'): none is reentrant, so taking one here
        # would hang the worker until SIGKILL. It only flips the probe; logging and the
        # timer happen on the loop.
        if probe.draining:
            server_handler(signum, frame)
            return
        probe.begin_draining()
        loop.call_soon_threadsafe(start_draining, signum, frame)

    def start_draining(signum: int, frame: FrameType | None) -> None:
        logger.info("shutdown requested, draining before stop", drain_seconds=drain_seconds)
        loop.call_later(drain_seconds, server_handler, signum, frame)

    signal.signal(signal.SIGTERM, drain_then_stop)

    def restore() -> None:
        if signal.getsignal(signal.SIGTERM) is drain_then_stop:
            signal.signal(signal.SIGTERM, server_handler)

    return restore
