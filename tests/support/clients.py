"""The in-process app behind an HTTP client, and a clock the test moves by hand."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import httpx
from asgi_lifespan import LifespanManager

from app.core.clock import Clock, utc_now
from app.core.config import Settings
from app.ops.metrics import METRICS_PATH
from tests.apps import create_test_app


class FrozenClock:
    """A clock that moves only when the test says so."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@asynccontextmanager
async def app_client(
    settings: Settings, clock: Clock = utc_now
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the in-process app (with the test routes), its lifespan running.

    With a ``FrozenClock``, the app reads time from it (token issue and expiry) instead
    of the system clock.
    """
    app = create_test_app(settings, clock=clock)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


def metrics_url(settings: Settings) -> str:
    """``/metrics`` of the in-process app, on its metrics listener.

    ``httpx.ASGITransport`` puts the URL's host and port in ``scope["server"]``, as a
    server does the address a connection arrived on, so the port here is what routes
    the request to the listener; ``app_client``'s own base URL reaches the API.
    """
    return f"http://testserver:{settings.metrics_port}{METRICS_PATH}"
