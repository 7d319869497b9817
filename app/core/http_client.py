"""The shared client for outbound HTTP calls, one per worker.

Created in the lifespan and closed on shutdown, so connections are pooled across
requests; every timeout is explicit (httpx's default would wait 5 s for everything),
and the current request ID travels with each call so logs join up across services.
"""

from typing import Annotated

import httpx
from fastapi import Depends

from app.core.config import Settings
from app.core.context import REQUEST_ID_HEADER, request_id_var
from app.core.resources import Resource


async def _forward_request_id(request: httpx.Request) -> None:
    request_id = request_id_var.get()
    if request_id is not None and REQUEST_ID_HEADER not in request.headers:
        request.headers[REQUEST_ID_HEADER] = request_id


def create_http_client(settings: Settings) -> httpx.AsyncClient:
    timeout = httpx.Timeout(
        connect=settings.outbound_connect_timeout,
        read=settings.outbound_read_timeout,
        write=settings.outbound_read_timeout,
        pool=settings.outbound_pool_timeout,
    )
    return httpx.AsyncClient(timeout=timeout, event_hooks={"request": [_forward_request_id]})


HTTP_CLIENT = Resource[httpx.AsyncClient]("http_client")
HttpClientDep = Annotated[httpx.AsyncClient, Depends(HTTP_CLIENT)]
