"""Read timeouts for slow or silent clients, as uvicorn's HTTP/1.1 protocol (httptools).

uvicorn closes idle keep-alive connections but has no header or body read timeout: a client
that connects and says nothing, or stops halfway through its headers or body, keeps its file
descriptor (and its worker's attention) forever. This subclass adds the two timeouts nginx
calls `client_header_timeout` and `client_body_timeout`:

- headers: complete request headers within `header_timeout_seconds` of the connection being
  made or the next request's first byte (a total, so headers dripped a byte at a time are cut);
- body: no gap longer than `body_timeout_seconds` between two pieces of the body (a slow but
  steady upload is not cut). A pause the server causes (reading paused while the app catches up)
  does not count.

One lazy timer per connection: a phase sets a deadline and the timer, when it fires, closes the
connection or re-arms at the current deadline, so the hot path costs two attribute writes and a
`loop.time()`, not a timer per request or per body chunk.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from asyncio import TimerHandle
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.settings import Settings

log = logging.getLogger("omnistock.server")

_TIMEOUT_TEXT = b"request headers not received in time\n"
REQUEST_TIMEOUT = b"".join(
    [
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n",
        b"content-length: %d\r\nconnection: close\r\n\r\n" % len(_TIMEOUT_TEXT),
        _TIMEOUT_TEXT,
    ]
)


@functools.cache
def read_timeouts() -> tuple[float, float]:
    """(header, body) timeouts in seconds, from OMNISTOCK_* (read once per worker)."""
    settings = Settings()
    return settings.header_timeout_seconds, settings.body_timeout_seconds


# Where a connection is in reading its current request.
IDLE, HEADERS, BODY = 0, 1, 2  # no byte of it yet, headers incomplete, headers complete
_Base = HttpToolsProtocol  # called by name below: zero-argument super() costs ~0.2 µs a call


class ReadTimeoutProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout, self._body_timeout = read_timeouts()
        self._deadline: float | None = None  # None: not waiting for the client
        self._timer: TimerHandle | None = None
        self._timer_at = math.inf  # when _timer fires
        self._phase = IDLE

    def _expect_by(self, timeout: float) -> None:
        deadline = self._deadline = self.loop.time() + timeout
        if deadline < self._timer_at:  # no timer yet, or one armed for later than this
            self._arm(deadline)

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_at(when, self._check_deadline)
        self._timer_at = when

    def _check_deadline(self) -> None:
        self._timer, self._timer_at = None, math.inf
        if self._deadline is None or self.transport.is_closing():
            return
        if self.flow.read_paused:  # the server stopped reading, not the client
            self._deadline = self.loop.time() + self._body_timeout
        if self.loop.time() < self._deadline:
            self._arm(self._deadline)
            return
        log.debug("closing a connection from %s: request not received in time", self.client)
        if self._phase == HEADERS:  # a request began: say why it ends
            self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        _Base.connection_made(self, transport)
        self._expect_by(self._header_timeout)

    def data_received(self, data: bytes) -> None:
        if self._phase == IDLE:  # the first bytes of a request
            self._phase = HEADERS
            if self._deadline is None:  # a next one (kept alive, pipelined): the clock starts
                self._expect_by(self._header_timeout)
        _Base.data_received(self, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        _Base.connection_lost(self, exc)

    # httptools parser callbacks

    def on_headers_complete(self) -> None:
        self._phase = BODY
        self._expect_by(self._body_timeout)  # until on_message_complete (at once if no body)
        _Base.on_headers_complete(self)

    def on_body(self, body: bytes) -> None:
        self._deadline = self.loop.time() + self._body_timeout
        _Base.on_body(self, body)

    def on_message_complete(self) -> None:
        self._phase, self._deadline = IDLE, None
        _Base.on_message_complete(self)
