"""CORS: browsers on the origins in OMNISTOCK_CORS_ORIGINS may call the API.

Starlette's CORSMiddleware wraps the whole application, just inside the request frame
(app/api/asgi.py), so every route gets the headers: the fast-path routes (app/api/fast_path.py
only replaces a route's handler, inside the app), the Server-Sent Events of /v1/events (the
headers go out with the stream's first message), the board's files, and the frame's own answers
(413 before the body, 503 at the deadline), which the frame sends through `install`'s answer.

Credentials mode is never allowed (no Access-Control-Allow-Credentials): the service reads API
keys from the `Authorization` header, which a page sends with `fetch` after a preflight,
never from cookies. So `*` (any origin) is safe to offer and may stand alone in the list; a
key in a page is visible to whoever loads the page, so pages on other origins should only
read public data (the widget sends no key).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp

ALLOWED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ALLOWED_HEADERS = (
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "Last-Event-ID",
    "X-Request-ID",
)
# Response headers a page's script may read besides the CORS-safelisted ones.
EXPOSED_HEADERS = ("Retry-After", "X-Request-ID", "Idempotent-Replayed")
PREFLIGHT_MAX_AGE_SECONDS = 600


def install(app: FastAPI, origins: tuple[str, ...]) -> Callable[[Response], ASGIApp] | None:
    """Add the CORS middleware when any origin is allowed, and return how an answer given
    outside it gets the same headers; none: no CORS headers at all (a preflight then gets 405
    as before, and a browser blocks cross-origin reads) and None."""
    if not origins:
        return None
    options: dict[str, Any] = {
        "allow_origins": list(origins),
        "allow_methods": list(ALLOWED_METHODS),
        "allow_headers": list(ALLOWED_HEADERS),
        "expose_headers": list(EXPOSED_HEADERS),
        "allow_credentials": False,
        "max_age": PREFLIGHT_MAX_AGE_SECONDS,
    }
    app.add_middleware(CORSMiddleware, **options)

    def answer(response: Response) -> ASGIApp:
        return CORSMiddleware(response, **options)

    return answer
