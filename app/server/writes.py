"""One write a turn of the event loop per connection: a response's head and body leave together.

uvicorn writes a response's status line and headers with one `transport.write` and its body
with another, so every response costs the server two send syscalls and the client two
segments to read (with TCP_NODELAY each write is its own segment). `CoalescingTransport`
holds a connection's writes until the end of the current turn of the event loop and hands
them to the real transport as one: the head and body of a response, and several pipelined
responses, leave in one syscall. Nothing waits longer than that turn: a streamed response's
head or a Server-Sent Event leaves as soon as the loop is idle again, as before.
"""

from __future__ import annotations

import asyncio
from typing import Any

from app.server.timeouts import ReadTimeoutProtocol


class CoalescingTransport:
    """Proxy of an asyncio transport whose writes are joined per turn of the event loop;
    every other method is the real transport's. `close` sends what is held first."""

    __slots__ = ("_held", "_loop", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data))

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        held = self._held
        if not held:
            return
        data = held[0] if len(held) == 1 else b"".join(held)
        held.clear()
        if not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def write_eof(self) -> None:
        self.flush()
        self.transport.write_eof()

    def get_write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size() + sum(map(len, self._held))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class CoalescingProtocol(ReadTimeoutProtocol):
    """The service's HTTP/1.1 protocol (`omnistock serve`): uvicorn's httptools protocol with
    the read timeouts of app/server/timeouts.py, writing through a CoalescingTransport."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        coalescing = CoalescingTransport(transport, self.loop)
        ReadTimeoutProtocol.connection_made(self, coalescing)  # type: ignore[arg-type]
