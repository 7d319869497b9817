"""A TCP proxy the tests put between the app and PostgreSQL to simulate outages.

``cut()`` is a network partition: bytes on open connections are silently dropped
(nothing is reset, so reads hang) and new connections are accepted but never
answered, so connects hang rather than fail: the hardest outage for a client.
``reset()`` is a database that went away: every open connection is reset and new
ones are refused. ``stall_new()`` is a server too busy to take connections: new ones
hang as in a cut, while open ones go on working. ``delay(seconds)`` is a slow network:
every chunk is held that long before it goes on. ``restore()`` forwards again, at once.
The proxy runs its own event loop in a thread so it keeps working while the test's
loop, or a separate server process, is busy.
"""

import asyncio
import contextlib
import threading
from types import TracebackType
from typing import Self


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._forwarding = True
        self._answering_new = True
        self._delay = 0.0
        self._refusing = False
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def __enter__(self) -> Self:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop
        ).result(timeout=5)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def cut(self) -> None:
        self._forwarding = False

    def reset(self) -> None:
        self._refusing = True
        self._loop.call_soon_threadsafe(self._abort_all)

    def _abort_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()

    def stall_new(self) -> None:
        self._answering_new = False

    def delay(self, seconds: float) -> None:
        self._delay = seconds

    def restore(self) -> None:
        self._forwarding = True
        self._answering_new = True
        self._refusing = False
        self._delay = 0.0

    async def _shutdown(self) -> None:
        self._abort_all()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        # Connections held open during a cut are still being handled: end them too.
        handlers = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    async def _handle(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        if self._refusing:
            client_writer.transport.abort()
            return
        self._writers.add(client_writer)
        if not (self._forwarding and self._answering_new):
            return  # accepted, never answered: held open until the proxy exits
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers.add(server_writer)
        await asyncio.gather(
            self._pipe(client_reader, server_writer), self._pipe(server_reader, client_writer)
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                if self._delay:
                    await asyncio.sleep(self._delay)
                if self._forwarding:  # during a cut, bytes vanish as on a dead link
                    writer.write(data)
                    await writer.drain()
        writer.transport.abort()
