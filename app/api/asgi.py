"""The frame of every HTTP request: request id and log line, metrics, deadline, body limit.

One pure ASGI callable (no BaseHTTPMiddleware, no layer per concern): each concern keeps its
rules in its own module (app/api/request_log.py, metrics.py, deadline.py, limits.py) and the
frame calls them, with one wrapper of `send` and one of `receive` for all of them, both methods
of one small per-request object. As four nested middlewares, each layer added a coroutine
frame, its closures and a hop for every message in each direction: 23 µs of CPU a request
besides the log line, 16 as one frame (docs/benchmarks.md, "Session 5, HTTP tier").

Outermost of the service's middlewares: the request id is set for every line logged while the
request runs, and CORS (app/api/cors.py) sits inside, so the frame's own answers (413 before the
body is read, 503 at the deadline) go out through `answer`, which gives them CORS's headers too.
Lifespan and websocket scopes pass straight through.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api import deadline, limits, metrics, request_log
from app.logs import REQUEST_ID
from app.store.durable import answer_by

# How the frame's own answers go out: straight (no CORS), or wrapped so CORS adds its headers.
Answer = Callable[[Response], ASGIApp]


def _plain(response: Response) -> ASGIApp:
    return response


class _Exchange:
    """One request's state, and the `send` and `receive` the application gets."""

    __slots__ = (
        "_receive",
        "_send",
        "expired",
        "finished",
        "limit",
        "loop",
        "raw_id",
        "received",
        "started",
        "status",
        "task",
        "timer",
    )
    # Set when the deadline starts (not for a request answered before the application).
    loop: asyncio.AbstractEventLoop
    task: asyncio.Task[Any]
    timer: asyncio.TimerHandle

    def __init__(self, receive: Receive, send: Send, raw_id: bytes, limit: int) -> None:
        self._receive = receive
        self._send = send
        self.raw_id = raw_id
        self.limit = limit
        self.status = 500  # what is logged and counted when no response started
        self.received = 0  # body bytes so far
        self.started = False  # the response has started: the deadline no longer applies
        self.expired = False  # the deadline passed first: the frame cancelled the request
        self.finished = False  # the request is over: nothing may cancel its task any more

    def expire(self) -> None:
        """The deadline's timer (decided on the loop, between steps of the task)."""
        if not (self.started or self.finished):
            self.expired = True
            self.task.cancel()

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            if not self.started:
                if self.expired:
                    # The cancellation is already on its way: take it here, before any byte
                    # of this response goes out, and answer 503 instead.
                    await asyncio.sleep(0)
                self.started = True
                self.timer.cancel()
            self.status = message["status"]
            message["headers"] = [*message.get("headers", ()), (request_log.HEADER, self.raw_id)]
        await self._send(message)

    async def receive(self) -> Message:
        if self.started or self.expired:
            message = await self._receive()
        else:
            # A slow client is not a slow store: the deadline's clock stops while reading.
            loop = self.loop
            remaining = max(0.0, self.timer.when() - loop.time())
            self.timer.cancel()
            try:
                message = await self._receive()
            finally:
                if not (self.started or self.expired or self.finished):
                    self.timer = loop.call_later(remaining, self.expire)
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                raise limits.BodyTooLarge(self.limit)
        return message


class Frame:
    """Pure ASGI middleware; `deadline_seconds` is the budget from the request to the response
    start (app/api/deadline.py), `max_body_bytes` the body limit (app/api/limits.py)."""

    def __init__(
        self,
        app: ASGIApp,
        deadline_seconds: float,
        max_body_bytes: int,
        answer: Answer | None = None,
        dispatch: Callable[[ASGIApp], Callable[[Scope], ASGIApp]] | None = None,
    ) -> None:
        self.app = app
        self.seconds = deadline_seconds
        self.limit = max_body_bytes
        self.answer = answer or _plain
        # `dispatch(app)(scope)`: the app a request goes to, when not `app` (the fast path's
        # shortcuts, app/api/fast_path.py `Shortcuts`).
        self.dispatch = dispatch(app) if dispatch is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = request_log.request_id_from(scope)
        token = REQUEST_ID.set(request_id)
        x = _Exchange(receive, send, request_id.encode("ascii"), self.limit)
        try:
            if limits.declared_length(scope) > self.limit:
                x.started = True  # answered before the application: no deadline to keep
                await self.answer(limits.too_large(self.limit))(scope, receive, x.send)
            else:
                await self._within_deadline(scope, receive, x)
        finally:
            seconds = time.perf_counter() - start
            template = getattr(scope.get("route"), "path", None) or "unmatched"
            metrics.observe_request(scope["method"], template, x.status, seconds)
            request_log.log_request(scope, template, x.status, seconds)
            REQUEST_ID.reset(token)

    async def _within_deadline(self, scope: Scope, receive: Receive, x: _Exchange) -> None:
        loop = x.loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        x.task = task
        x.timer = loop.call_later(self.seconds, x.expire)
        # What a wait for replicas may spend (app/store/durable.py). Not moved when the clock
        # stops for the body: that only leaves more time than the wait assumes.
        answer_by.set(loop.time() + self.seconds)
        app = self.app if self.dispatch is None else self.dispatch(scope)
        try:
            await app(scope, x.receive, x.send)
        except asyncio.CancelledError:
            if not x.expired or x.started or task.uncancel() > 0:
                raise  # cancelled by someone else (shutdown, a client gone), or too late
            x.started = True
            await self.answer(deadline.missed(scope, self.seconds))(scope, receive, x.send)
        else:
            if x.expired:  # the cancel was lost inside a store call (see app/domain/tasks.py)
                task.uncancel()  # and the request answered after all: nothing to undo
        finally:
            x.finished = True
            x.timer.cancel()
