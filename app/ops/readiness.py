"""Readiness: can this process serve traffic right now?

Probes arrive from every kubelet, load balancer and curious human, so one check runs
at a time, all concurrent callers share its result, and the result is reused for
``READY_CACHE_SECONDS``. Each check runs under ``READY_TIMEOUT``: a database that
hangs answers "not ready" in bounded time: callers stop waiting at the deadline even
when tearing down a stalled connection takes longer, and that cleanup finishes in
the background, still as the one shared check.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import structlog

from app.core.resources import Resource

logger = structlog.get_logger(__name__)

# A dependency this process cannot serve without: returns if it answers, raises if not.
ReadinessCheck = Callable[[], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class ReadinessReport:
    ready: bool
    checks: dict[str, str] = field(default_factory=dict)


class ReadinessProbe:
    def __init__(
        self,
        checks: Mapping[str, ReadinessCheck],
        *,
        timeout: float,
        cache_seconds: float,
        on_result: Callable[[bool], None] = lambda _: None,
    ) -> None:
        """``checks`` by the name the report gives them; all run at once, each bounded.

        ``on_result`` hears every verdict (each check, and draining): the metrics gauge.
        """
        self._checks = dict(checks)
        self._on_result = on_result
        self._timeout = timeout
        self._cache_seconds = cache_seconds
        self._draining = False
        self._last: ReadinessReport | None = None
        self._last_at = 0.0
        self._running: asyncio.Task[ReadinessReport] | None = None

    @property
    def draining(self) -> bool:
        return self._draining

    def begin_draining(self) -> None:
        """From now on report "not ready", so traffic moves away before the process exits.

        Only sets a flag, so a signal handler may call it; ``on_result`` hears the
        verdict with the next check.
        """
        self._draining = True

    async def check(self) -> ReadinessReport:
        if self._draining:
            self._on_result(False)
            return ReadinessReport(ready=False, checks={"shutdown": "draining"})
        if self._last is not None and time.monotonic() - self._last_at < self._cache_seconds:
            return self._last
        if self._running is None:
            self._running = asyncio.create_task(self._run_checks())
        try:
            # Shielded: a caller that gives up must not cancel the check others wait on.
            async with asyncio.timeout(self._timeout):
                return await asyncio.shield(self._running)
        except TimeoutError:
            return ReadinessReport(ready=False, checks=dict.fromkeys(self._checks, "timeout"))

    async def _run_checks(self) -> ReadinessReport:
        try:
            names = list(self._checks)
            verdicts = await asyncio.gather(*(self._run(name) for name in names))
            checks = dict(zip(names, verdicts, strict=True))
            report = ReadinessReport(ready=all(v == "ok" for v in verdicts), checks=checks)
            self._last, self._last_at = report, time.monotonic()
            self._on_result(report.ready)
            return report
        finally:
            self._running = None

    async def _run(self, name: str) -> str:
        try:
            async with asyncio.timeout(self._timeout):
                await self._checks[name]()
        except TimeoutError:
            logger.warning("readiness check timed out", check=name, timeout_s=self._timeout)
            return "timeout"
        except Exception as exc:
            logger.warning(
                "readiness check failed", check=name, error=type(exc).__name__, detail=str(exc)
            )
            return "unavailable"
        return "ok"


READINESS_PROBE = Resource[ReadinessProbe]("readiness_probe")
