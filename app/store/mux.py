"""One store connection shared by every concurrent request, with its commands pipelined.

Why not redis-py's pool for the hot path: each redis-py call takes a pooled connection (an
asyncio.Condition and a timeout context), writes its command with its own syscall, reads its
reply and hands the connection back — about 60 µs of Python per script call, more than half
of what a whole availability request costs (docs/benchmarks.md, "Tuning"). Here a call packs
its command, appends a future to a queue and returns when the reply arrives. Commands issued
in the same turn of the event loop leave in one write, and replies that arrive together are
parsed in one `data_received` (hiredis), so under load many requests share each syscall: the
coalescing of concurrent calls into pipelines that issue #5 asks for.

RESP replies come back in the order the commands were sent, so the queue of futures is the
whole bookkeeping. A caller that is cancelled (the request deadline) leaves its future in the
queue; its reply is read and dropped, and the connection stays usable — unlike a pooled
connection, which must be closed when a reply is left unread.

Failure behaviour matches app/store/connection.py: no retries (a resent FCALL could apply
twice), `redis.exceptions` types, a connect timeout, and a reply timeout: when the oldest
command has waited `timeout` seconds, the connection is closed and every waiting call fails
with TimeoutError (the next call connects afresh). Used for standalone servers only; a cluster
keeps redis-py's cluster client, which routes by slot.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import hiredis
from redis import exceptions as rx
from redis._parsers.base import BaseParser

Arg = str | bytes | bytearray | memoryview | int | float


def encode(arg: Arg) -> bytes:
    """redis-py's encoding of an argument: str as UTF-8, numbers as their repr."""
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, bytearray | memoryview):
        return bytes(arg)
    if isinstance(arg, str):
        return arg.encode()
    if isinstance(arg, bool):  # redis-py refuses these too: True is not a Redis value
        raise TypeError("a bool is not a store argument")
    if isinstance(arg, int):
        return b"%d" % arg
    return repr(arg).encode()


def pack(args: Sequence[Arg]) -> bytes:
    try:  # hiredis packs str, bytes, int and float the same way, 4x faster than Python
        return bytes(hiredis.pack_command(tuple(args)))  # type: ignore[arg-type]
    except TypeError:  # bytearray, memoryview, or a bool (refused below)
        pass
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = encode(arg)
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(out)


class _Protocol(asyncio.Protocol):
    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._reader = hiredis.Reader(
            protocolError=rx.InvalidResponse, replyError=BaseParser.parse_error, encoding="utf-8"
        )
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._sent_at: deque[float] = deque()  # monotonic send time of each waiting command
        self._out: list[bytes] = []
        self._transport: asyncio.Transport | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def send_one(self, command: bytes) -> asyncio.Future[Any]:
        """Queue `command`; the future of its reply. (The hot path: `send` for one reply.)"""
        if self.closed or self._transport is None:
            raise rx.ConnectionError("the store connection is closed")
        future = self._loop.create_future()
        self._waiting.append(future)
        self._sent_at.append(time.monotonic())
        if not self._out:
            self._loop.call_soon(self._flush)  # everything queued in this turn leaves at once
        self._out.append(command)
        if self._watchdog is None:
            self._watchdog = self._loop.call_later(self._timeout / 4, self._check)
        return future

    def send(self, command: bytes, replies: int) -> list[asyncio.Future[Any]]:
        """Queue `command`, which produces `replies` replies; the futures of those replies."""
        futures = [self.send_one(command)]
        for _ in range(replies - 1):  # the same write; only more replies to wait for
            futures.append(self.send_one(b""))
        return futures

    def _flush(self) -> None:
        if self._out and self._transport is not None and not self.closed:
            self._transport.write(b"".join(self._out))
        self._out.clear()

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while True:
            try:
                reply = self._reader.gets()
            except rx.InvalidResponse as exc:
                self._fail(exc)
                return
            if reply is False:
                return
            if not self._waiting:
                self._fail(rx.InvalidResponse("a reply nobody asked for"))
                return
            future = self._waiting.popleft()
            self._sent_at.popleft()
            if not future.done():  # a cancelled caller's reply is read and dropped
                future.set_result(reply)

    def _check(self) -> None:
        """Every timeout/4 while commands wait: fail them all if the oldest is too old."""
        self._watchdog = None
        if self.closed or not self._waiting:
            return
        if time.monotonic() - self._sent_at[0] >= self._timeout:
            self._fail(rx.TimeoutError(f"no reply from the store within {self._timeout:g} s"))
            return
        self._watchdog = asyncio.get_running_loop().call_later(self._timeout / 4, self._check)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(rx.ConnectionError(f"the store closed the connection: {exc or 'EOF'}"))

    def _fail(self, exc: Exception) -> None:
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_exception(exc)
        self._sent_at.clear()
        self._out.clear()
        if self._transport is not None:
            self._transport.abort()

    def close(self) -> None:
        self._fail(rx.ConnectionError("the store connection was closed by the client"))


class Multiplexer:
    """`await mux.execute("FCALL", function, 2, k1, k2, a1)`: the reply, decoded as UTF-8;
    an error reply raises its redis.exceptions type (ResponseError, NoScriptError, ...)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        db: int = 0,
        timeout: float = 1.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._host, self._port = host, port
        self._username, self._password, self._db = username, password, db
        self._timeout = timeout
        self._ssl = ssl_context
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None

    @classmethod
    def from_url(
        cls, url: str, timeout: float, ssl_context: ssl.SSLContext | None = None
    ) -> Multiplexer:
        """redis://[user:password@]host[:port][/db] or rediss://... (with `ssl_context`)."""
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(f"unsupported store URL scheme {parts.scheme!r}")
        path = parts.path.lstrip("/")
        return cls(
            parts.hostname or "localhost",
            parts.port or 6379,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            db=int(path) if path else 0,
            timeout=timeout,
            ssl_context=ssl_context if parts.scheme == "rediss" else None,
        )

    async def execute(self, *args: Arg) -> Any:
        protocol = self._protocol
        if protocol is None or protocol.closed:
            protocol = await self._connection()
        future = protocol.send_one(pack(args))
        reply = await future
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def pipeline(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        """The replies of `commands`, sent together in this order on this one connection
        (errors among them as exception objects, not raised)."""
        packed = b"".join([pack(c) for c in commands])
        futures = (await self._connection()).send(packed, len(commands))
        return [await f for f in futures]

    async def transaction(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        """The replies of `commands` run as one MULTI/EXEC (errors among them as exception
        objects, not raised): the batch reads of app/store/batch.py."""
        replies = await self.pipeline([("MULTI",), *commands, ("EXEC",)])
        for reply in replies[:-1]:  # +OK, +QUEUED...: a command the server refused to queue
            if isinstance(reply, Exception):
                raise reply
        result = replies[-1]
        if isinstance(result, Exception):
            raise result
        if not isinstance(result, list) or len(result) != len(commands):
            raise rx.InvalidResponse(f"unexpected EXEC reply: {result!r:.200}")
        return result

    async def _connection(self) -> _Protocol:
        protocol = self._protocol
        if protocol is not None and not protocol.closed:
            return protocol
        # One connect at a time; the callers that arrive meanwhile wait for the same one.
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        try:
            return await asyncio.shield(self._connecting)
        finally:
            if self._connecting is not None and self._connecting.done():
                self._connecting = None

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout):
                _, protocol = await loop.create_connection(
                    lambda: _Protocol(self._timeout),
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl else None,
                )
                hello: list[bytes] = []
                if self._password is not None:
                    auth = [self._username, self._password] if self._username else [self._password]
                    hello.append(pack(["AUTH", *auth]))
                if self._db:
                    hello.append(pack(["SELECT", self._db]))
                if hello:
                    futures = protocol.send(b"".join(hello), len(hello))
                    for future in futures:
                        reply = await future
                        if isinstance(reply, Exception):
                            protocol.close()
                            raise reply
        except TimeoutError as exc:  # the builtin one, from asyncio.timeout
            raise rx.TimeoutError(
                f"could not connect to the store within {self._timeout:g} s"
            ) from exc
        except OSError as exc:
            raise rx.ConnectionError(f"could not connect to the store: {exc}") from exc
        self._protocol = protocol
        return protocol

    async def aclose(self) -> None:
        if self._protocol is not None:
            self._protocol.close()
            self._protocol = None
