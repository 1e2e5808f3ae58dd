"""A deadline for every request: an answer within `request_deadline_seconds`, never a hang.

Each store call has its own bounds (socket, connect and pool-wait timeouts, see
app/store/connection.py), but a request makes several calls in a row and may first wait for a
pooled connection, so those bounds add up. The request frame (app/api/asgi.py) bounds the
sum: when a request has not started its response by the deadline, it is cancelled and answers
503 `store_unavailable` with `Retry-After`, like any store error.

Cancelling a request leaves its outcome unknown, exactly as a timeout does: a mutating script
may have run. The client retries with its Idempotency-Key, which is safe (app/api/idempotency.py).

Time spent waiting for the client's own request body does not count, and the deadline stops
once the response has started, so a long Server-Sent Events stream is not cut.
"""

from __future__ import annotations

import logging

from starlette.responses import Response
from starlette.types import Scope

from app.api.problems import store_unavailable

log = logging.getLogger("omnistock.api")


def missed(scope: Scope, seconds: float) -> Response:
    """The answer to a request cancelled at its deadline (logged as a warning)."""
    log.warning("%s %s: no answer within %g s; 503", scope["method"], scope["path"], seconds)
    return store_unavailable(f"no answer from the stock store within {seconds:g} s")
