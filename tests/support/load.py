"""Steady load from many concurrent clients, recorded request by request."""

import asyncio
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import httpx


@dataclass(frozen=True, slots=True)
class Outcome:
    started: float  # time.monotonic()
    seconds: float
    status: int | None  # None: no HTTP answer, and ``error`` says why
    error: str | None = None  # ConnectError: refused before being accepted; others: dropped


@dataclass(slots=True)
class SteadyLoad:
    """``clients`` loops sending ``GET path``, in a thread, until stopped.

    Back to back, or ``pause`` seconds apart: a probe polls, it does not hammer.
    """

    base_url: str
    path: str
    clients: int = 16
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 30
    keep_alive: bool = True
    pause: float = 0
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=self.timeout + 10)

    async def _run(self) -> None:
        limits = httpx.Limits(
            max_connections=self.clients,
            max_keepalive_connections=self.clients if self.keep_alive else 0,
        )
        async with httpx.AsyncClient(
            base_url=self.base_url, headers=dict(self.headers), timeout=self.timeout, limits=limits
        ) as client:
            await asyncio.gather(*(self._loop(client) for _ in range(self.clients)))

    async def _loop(self, client: httpx.AsyncClient) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                response = await client.get(self.path)
            except httpx.TransportError as exc:
                outcome = Outcome(started, time.monotonic() - started, None, type(exc).__name__)
                await asyncio.sleep(0.01)  # a refused connect would otherwise spin
            else:
                outcome = Outcome(started, time.monotonic() - started, response.status_code)
            self.outcomes.append(outcome)
            if self.pause:
                await asyncio.sleep(self.pause)

    def between(self, start: float, end: float) -> list[Outcome]:
        return [o for o in self.outcomes if start <= o.started < end]
