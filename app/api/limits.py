"""Request body size limit (OMNISTOCK_MAX_BODY_BYTES, 1 MiB by default): 413
`payload_too_large`, before any route, any auth check or the JSON parser sees the body.

Pure ASGI. A `Content-Length` above the limit is answered at once, without reading a byte of
the body. A body without one (chunked transfer encoding) is counted as it streams in, and the
read that crosses the limit raises `BodyTooLarge`; FastAPI re-raises HTTPExceptions from its
body reader untouched, so the handler installed here answers the same 413.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.asgi import HttpMiddleware
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


class BodyLimitMiddleware(HttpMiddleware):
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.max_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    break  # the server rejects these; count the bytes below anyway
                if declared > limit:
                    await too_large(limit)(scope, receive, send)
                    return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


def install(app: FastAPI, max_bytes: int) -> None:
    async def on_too_large(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BodyTooLarge)
        return too_large(exc.limit)

    app.add_exception_handler(BodyTooLarge, on_too_large)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_bytes)
