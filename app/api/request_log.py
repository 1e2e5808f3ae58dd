"""One log line per request, and the request id that ties it to the client's own logs.

The request frame (app/api/asgi.py) calls these for every HTTP request. The request id comes
from `X-Request-ID` when the client sends a usable one (1-128 visible ASCII characters),
otherwise it is generated; either way it is echoed in the response's `X-Request-ID` header and
set in `app.logs.REQUEST_ID` for every record logged while the request runs. The line has
method, route template (never the raw path: ids in paths stay out of the logs and the series
stay few), status, duration_ms, request_id and the client address. No other header is read,
so `Authorization` and API keys never reach a log.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets

from starlette.types import Scope

from app.logs import log_info

log = logging.getLogger("omnistock.access")

HEADER = b"x-request-id"
_VALID = re.compile(rb"[\x21-\x7e]{1,128}")


# A new id is this process's random 64-bit prefix and a counter: unique without a getrandom
# call per request, which uuid4 makes (a few % of a cheap request's CPU, measured with py-spy).
# (uvicorn starts its workers with "spawn", so each has its own prefix; a forked child draws
# its own anyway, at the fork rather than by a getpid system call per request.)
_PREFIX = secrets.token_hex(8)
_COUNTER = itertools.count()


def _new_prefix() -> None:
    global _PREFIX
    _PREFIX = secrets.token_hex(8)


os.register_at_fork(after_in_child=_new_prefix)


def _new_id() -> str:
    return f"{_PREFIX}{next(_COUNTER):016x}"


def request_id_from(scope: Scope) -> str:
    """The client's X-Request-ID if usable, else a new one (32 hex characters)."""
    for name, value in scope["headers"]:
        if name == HEADER:
            if _VALID.fullmatch(value):
                return str(value.decode("ascii"))
            break
    return _new_id()


def log_request(scope: Scope, route: str, status: int, seconds: float) -> None:
    """The request's one line, on `omnistock.access` (`route`: its template, or "unmatched")."""
    if log.isEnabledFor(logging.INFO):
        duration_ms = round(seconds * 1000, 3)
        client = scope.get("client")
        method = scope["method"]
        fields = {
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": duration_ms,
            "client": client[0] if client else None,
        }
        args = (method, route, status, duration_ms)
        log_info(log, "%s %s %d %.1fms", args, fields)
