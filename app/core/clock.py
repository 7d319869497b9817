"""The time source for anything that reasons about time (token lifetimes).

Passed in where it is used (``create_app(clock=...)``), so a test can freeze it
instead of sleeping.
"""

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)
