"""One log line per request, and the request id that ties it to the client's own logs.

Pure ASGI (no BaseHTTPMiddleware): the request id comes from `X-Request-ID` when the client
sends a usable one (1-128 visible ASCII characters), otherwise it is generated; either way it
is echoed in the response's `X-Request-ID` header and set in `app.logs.REQUEST_ID` for every
record logged while the request runs. The line has method, route template (never the raw
path: ids in paths stay out of the logs and the series stay few), status, duration_ms,
request_id and the client address. No other header is read, so `Authorization` and API keys
never reach a log.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import time

from starlette.types import Message, Receive, Scope, Send

from app.api.asgi import HttpMiddleware
from app.logs import REQUEST_ID

log = logging.getLogger("omnistock.access")

HEADER = b"x-request-id"
_VALID = re.compile(rb"[\x21-\x7e]{1,128}")


# A new id is this process's random 64-bit prefix and a counter: unique without a getrandom
# call per request, which uuid4 makes (a few % of a cheap request's CPU, measured with py-spy).
# (uvicorn starts its workers with "spawn", so each has its own prefix; the pid check keeps a
# forked child from sharing its parent's anyway.)
_PREFIX = (os.getpid(), secrets.token_hex(8))
_COUNTER = itertools.count()


def _new_id() -> str:
    global _PREFIX
    if _PREFIX[0] != os.getpid():
        _PREFIX = (os.getpid(), secrets.token_hex(8))
    return f"{_PREFIX[1]}{next(_COUNTER):016x}"


def request_id_from(scope: Scope) -> str:
    """The client's X-Request-ID if usable, else a new one (32 hex characters)."""
    for name, value in scope["headers"]:
        if name == HEADER:
            if _VALID.fullmatch(value):
                return str(value.decode("ascii"))
            break
    return _new_id()


class RequestLogMiddleware(HttpMiddleware):
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        request_id = request_id_from(scope)
        raw_id = request_id.encode("ascii")
        token = REQUEST_ID.set(request_id)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (HEADER, raw_id)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if log.isEnabledFor(logging.INFO):
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                duration_ms = round((time.perf_counter() - start) * 1000, 3)
                client = scope.get("client")
                log.info(
                    "%s %s %d %.1fms",
                    scope["method"],
                    route,
                    status,
                    duration_ms,
                    extra={
                        "fields": {
                            "method": scope["method"],
                            "route": route,
                            "status": status,
                            "duration_ms": duration_ms,
                            "client": client[0] if client else None,
                        }
                    },
                )
            REQUEST_ID.reset(token)
