"""The time source for anything that reasons about time (token lifetimes).

Injected as a dependency, so a test can freeze it instead of sleeping.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


async def get_clock() -> Clock:
    return utc_now


ClockDep = Annotated[Clock, Depends(get_clock)]
