"""A deadline for every request: an answer within `request_deadline_seconds`, never a hang.

Each store call has its own bounds (socket, connect and pool-wait timeouts, see
app/store/connection.py), but a request makes several calls in a row and may first wait for a
pooled connection, so those bounds add up. This middleware bounds the sum: when a request has
not started its response by the deadline, it is cancelled and answers 503 `store_unavailable`
with `Retry-After`, like any store error.

Cancelling a request leaves its outcome unknown, exactly as a timeout does: a mutating script
may have run. The client retries with its Idempotency-Key, which is safe (app/api/idempotency.py).

Time spent waiting for the client's own request body does not count, and the deadline stops
once the response has started, so a long Server-Sent Events stream is not cut.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.asgi import HttpMiddleware
from app.api.problems import store_unavailable
from app.store.durable import answer_by

log = logging.getLogger("omnistock.api")


class DeadlineMiddleware(HttpMiddleware):
    """Pure ASGI middleware; `seconds` is the budget from the request to the response start."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        super().__init__(app)
        self.seconds = seconds

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        started = False  # the response has started: the deadline no longer applies
        expired = False  # the deadline passed first: this middleware cancelled the request
        finished = False  # the request is over: nothing may cancel its task any more

        def expire() -> None:
            nonlocal expired
            if not (started or finished):  # (decided on the loop, between steps of the task)
                expired = True
                task.cancel()

        remaining = self.seconds
        timer = loop.call_later(remaining, expire)
        # What a wait for replicas may spend (app/store/durable.py). Not moved when the clock
        # stops for the body: that only leaves more time than the wait assumes.
        answer_by.set(loop.time() + self.seconds)

        async def timed_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start" and not started:
                if expired:
                    # The cancellation is already on its way: take it here, before any byte
                    # of this response goes out, and answer 503 below instead.
                    await asyncio.sleep(0)
                started = True
                timer.cancel()
            await send(message)

        async def timed_receive() -> Message:
            nonlocal timer, remaining
            if started or expired:
                return await receive()
            # A slow client is not a slow store: the clock stops while reading the body.
            remaining = max(0.0, timer.when() - loop.time())
            timer.cancel()
            try:
                return await receive()
            finally:
                if not (started or expired or finished):
                    timer = loop.call_later(remaining, expire)

        try:
            await self.app(scope, timed_receive, timed_send)
        except asyncio.CancelledError:
            if not expired or started or task.uncancel() > 0:
                raise  # cancelled by someone else (shutdown, a client gone), or too late
            log.warning(
                "%s %s: no answer within %g s; 503", scope["method"], scope["path"], self.seconds
            )
            response = store_unavailable(
                f"no answer from the stock store within {self.seconds:g} s"
            )
            await response(scope, receive, send)
        else:
            if expired:  # the cancel was lost inside a store call (see app/domain/tasks.py)
                task.uncancel()  # and the request answered after all: nothing to undo
        finally:
            finished = True
            timer.cancel()
