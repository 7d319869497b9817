"""uvicorn's httptools protocol with limits on request heads: size, field count, time.

As shipped, uvicorn accepts any head: a 32 MiB header or 100,000 headers are parsed
and kept (an unfinished header grows by concatenation, one copy per socket read), and a
client that sends a header every few seconds holds its connection for as long as it
likes. The subclass made by ``head_limited_protocol`` bounds all three:

- Size (``HTTP_MAX_HEADER_BYTES``, request line included): the bytes of an unfinished
  head are counted as they arrive, and once they pass the limit the head is refused,
  so the worker never holds more of one than the limit plus a socket read (two when
  the head began in the middle of a read, behind the end of the previous request,
  whose read is not counted). A read that is larger than the limit by itself and
  holds a whole head (with a body behind it) is settled from the parsed head instead,
  so large bodies are never mistaken for large heads. The trailer fields after a
  chunked body are parsed like a head, and counted and timed like one.
- Field count (``HTTP_MAX_HEADERS``): checked when the head is complete; until then
  the size limit bounds it (a field takes at least four bytes).
- Time (``HTTP_HEADER_TIMEOUT_SECONDS``): a head must be complete that long after the
  connection opened, or after the first byte of a later request on it; otherwise
  the connection is closed, without an answer. One timer per worker visits the
  connections every tenth of the timeout (at most every second), so a connection is
  closed within that much after its time. Idle keep-alive connections stay uvicorn's
  (``GUNICORN_KEEPALIVE``); requests, once their head is in, the deadline's.

A refused head is answered with a problem document (431, or 400 where the parser
rejects the request, instead of uvicorn's plain text) with ``Connection: close``,
and the connection is closed. The app never sees it, so no access line is written:
a warning line is, with the problem's request ID.

Per request this adds a call to each of two overridden parser callbacks, three integer
stores and three comparisons; per socket read an addition and a comparison; per body
fragment a call and a store. No clock is read and no timer is set per request.

The gunicorn worker (``app.ops.worker``) uses it; ``make dev`` and plain ``uvicorn``
runs use uvicorn's own protocol, without these limits.
"""

import asyncio
from collections.abc import Collection
from http import HTTPStatus
from typing import ClassVar

import httptools
import structlog
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from app.core.config import ServerSettings
from app.core.context import REQUEST_ID_HEADER, incoming_request_id, request_id_var
from app.core.errors import problem_response

logger = structlog.get_logger(__name__)

# What a request line adds to its method and target (two spaces, "HTTP/1.1", CRLF),
# a field line to its name and value (": ", CRLF), and the blank line ending a head.
_REQUEST_LINE_FRAMING = 12
_FIELD_LINE_FRAMING = 4
_END_OF_HEAD = 2
# Visits of the timer per timeout, and the longest gap between two visits.
_VISITS_PER_TIMEOUT = 10
_LONGEST_VISIT_GAP = 1.0
_NOT_HTTP = "The request is not valid HTTP."


class _HeadRefusedError(Exception):
    """Raised in a parser callback to stop the parser; ``data_received`` answers it."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class HeadLimitedProtocol(HttpToolsProtocol):
    """The limits are class attributes, bound once per worker by ``head_limited_protocol``."""

    max_head_bytes: ClassVar[int]
    max_headers: ClassVar[int]
    visit_seconds: ClassVar[float]
    timeout_visits: ClassVar[int]
    _visiting: ClassVar[bool] = False

    # Per connection (class defaults until first set): the bytes of the head being
    # received, -1 from its end to the end of its message (a body is not a head); and
    # how many timer visits found a head awaited since the last one was complete.
    _head_bytes: int = 0
    _head_visits: int = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self._visiting:
            self._visit_connections(self.loop, self.connections)

    def data_received(self, data: bytes) -> None:
        """uvicorn's, with the head counted and refusals answered as problems."""
        self._unset_keepalive_if_required()
        if self._head_bytes >= 0:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError as error:
            refused = error.__context__
            if isinstance(refused, _HeadRefusedError):
                self._refuse(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, refused.detail)
            else:
                self._refuse(HTTPStatus.BAD_REQUEST, _NOT_HTTP)
            return
        if self._head_bytes > self.max_head_bytes:
            self._refuse(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, self._too_large())

    def on_headers_complete(self) -> None:
        if len(self.headers) > self.max_headers:
            raise _HeadRefusedError(f"The request has more than {self.max_headers} header fields.")
        # The count includes whatever followed the head in its read: only a read larger
        # than the limit needs the head measured.
        if self._head_bytes > self.max_head_bytes and self._parsed_head_bytes() > (
            self.max_head_bytes
        ):
            raise _HeadRefusedError(self._too_large())
        self._head_bytes = -1
        self._head_visits = 0
        super().on_headers_complete()

    def on_chunk_header(self) -> None:
        """A chunk of a chunked body: its data, or after the last one the trailer fields,
        which are parsed like a head. Counted and timed like one until data arrives."""
        self._head_bytes = 0
        self._head_visits = 0

    def on_body(self, body: bytes) -> None:
        self._head_bytes = -1
        super().on_body(body)

    def on_message_complete(self) -> None:
        # The next head may begin in this very read; its count starts with the next one.
        self._head_bytes = 0
        super().on_message_complete()

    def _parsed_head_bytes(self) -> int:
        fields = sum(len(name) + len(value) for name, value in self.headers)
        return (
            len(self.parser.get_method())
            + len(self.url)
            + _REQUEST_LINE_FRAMING
            + fields
            + _FIELD_LINE_FRAMING * len(self.headers)
            + _END_OF_HEAD
        )

    def _too_large(self) -> str:
        return f"The request line and headers are larger than {self.max_head_bytes} bytes."

    def _awaits_head(self) -> bool:
        """A head has begun, or nothing came yet on a new connection (not idle keep-alive)."""
        return self._head_bytes > 0 or (self._head_bytes == 0 and self.cycle is None)

    @classmethod
    def _visit_connections(
        cls, loop: asyncio.AbstractEventLoop, connections: Collection[object]
    ) -> None:
        """Close the connections whose head took longer than the timeout; then again."""
        cls._visiting = True
        for connection in tuple(connections):
            if isinstance(connection, cls) and connection._awaits_head():
                connection._head_visits += 1
                if connection._head_visits > cls.timeout_visits:
                    connection._head_timed_out()
        loop.call_later(cls.visit_seconds, cls._visit_connections, loop, connections)

    def _head_timed_out(self) -> None:
        if self.transport.is_closing():
            return
        if self._head_bytes > 0:
            logger.info(
                "request head timed out", received_bytes=self._head_bytes, peer=self._peer()
            )
        self.transport.close()

    def _refuse(self, status: HTTPStatus, detail: str) -> None:
        """Answer a head the app will never see with a problem, and close the connection.

        Trailer fields, or the head of a request sent before the previous one was
        answered, come while a response may be on its way: that connection is only closed.
        """
        self._head_bytes = -1
        request_id = incoming_request_id(self.headers or ())
        token = request_id_var.set(request_id)
        try:
            path = self._path()
            logger.warning("request refused", status=int(status), path=path, peer=self._peer())
            if self.cycle is None or self.cycle.response_complete:
                self.transport.write(self._problem(status, detail, path, request_id))
        finally:
            request_id_var.reset(token)
        self.transport.close()

    def _problem(self, status: HTTPStatus, detail: str, path: str, request_id: str) -> bytes:
        response = problem_response(
            status,
            detail,
            instance=path,
            headers={"Connection": "close", REQUEST_ID_HEADER: request_id},
        )
        content = [STATUS_LINE[status]]
        for name, value in (*self.server_state.default_headers, *response.raw_headers):
            content += (name, b": ", value, b"\r\n")
        content += (b"\r\n", bytes(response.body))
        return b"".join(content)

    def _path(self) -> str:
        """The request's path, for ``instance``: as far as it arrived, if printable ASCII."""
        url: bytes = getattr(self, "url", b"")
        if not url or len(url) > self.max_head_bytes:
            return ""
        try:
            path = (httptools.parse_url(url).path or b"").decode("latin-1")
        except httptools.HttpParserInvalidURLError:
            return ""
        return path if path.isascii() and path.isprintable() else ""

    def _peer(self) -> str | None:
        return self.client[0] if self.client else None


def head_limited_protocol(settings: ServerSettings) -> type[HeadLimitedProtocol]:
    """The protocol class with this server's limits bound as class attributes."""
    timeout = settings.http_header_timeout_seconds
    visit_gap = min(_LONGEST_VISIT_GAP, timeout / _VISITS_PER_TIMEOUT)

    class BoundHeadLimitedProtocol(HeadLimitedProtocol):
        max_head_bytes = settings.http_max_header_bytes
        max_headers = settings.http_max_headers
        visit_seconds = visit_gap
        timeout_visits = max(1, round(timeout / visit_gap))

    return BoundHeadLimitedProtocol
