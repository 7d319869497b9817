"""Session-per-request dependency.

The session commits when the handler returns and rolls back when it raises, and
both happen before the response is sent (``scope="function"``): a client is never
told "created" for a row whose commit failed.
"""

from collections.abc import AsyncIterator
from typing import Annotated, cast

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    sessionmaker = cast(async_sessionmaker[AsyncSession], request.state.db_sessionmaker)
    async with sessionmaker() as session:
        yield session
        await session.commit()


SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]
