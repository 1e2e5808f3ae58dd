"""Request body size limit (OMNISTOCK_MAX_BODY_BYTES, 1 MiB by default): 413
`payload_too_large`, before any route, any auth check or the JSON parser sees the body.

Enforced by the request frame (app/api/asgi.py). A `Content-Length` above the limit is answered
at once, without reading a byte of the body. A body without one (chunked transfer encoding) is
counted as it streams in, and the read that crosses the limit raises `BodyTooLarge`; FastAPI
re-raises HTTPExceptions from its body reader untouched, so the handler installed here answers
the same 413.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from starlette.types import Scope

from app.api.problems import problem


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")
        self.limit = limit


def too_large(limit: int) -> Response:
    return problem(
        413,
        "payload_too_large",
        "Payload too large",
        f"the request body is larger than {limit} bytes",
        max_body_bytes=limit,
    )


def declared_length(scope: Scope) -> int:
    """The request's first `Content-Length`, or -1 without one or with one that is not a
    number (the server rejects those; the body is counted as it comes anyway)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return -1


def install(app: FastAPI) -> None:
    """The 413 of a chunked body that crosses the limit while a route reads it."""

    async def on_too_large(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BodyTooLarge)
        return too_large(exc.limit)

    app.add_exception_handler(BodyTooLarge, on_too_large)
