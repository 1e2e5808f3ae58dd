"""A fast path past FastAPI's dependency solving for the hottest routes, for valid requests only.

FastAPI solves a route's dependencies and validates its parameters through pydantic on every
request: for GET /v1/availability/{sku} that cost more than the store call itself (profile in
docs/benchmarks.md). A route decorated with `@fast_path(check)` first runs `check(request)`,
which does the same checks by hand — identifier patterns, the API key and its scope, the body
through the same pydantic model — and returns the endpoint's arguments when all of them pass.
When anything is off it returns None and the request takes FastAPI's own path, which answers
with exactly the problem response it always has. So invalid input behaves as before, byte for
byte, and valid input runs the very same endpoint function, only called directly.

FastAPI's documented extension point for this is a custom APIRoute class
(`get_route_handler`); routers opt in with `APIRouter(route_class=FastPathRoute)`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from app.api import auth
from app.domain.models import ID_PATTERN

Check = Callable[[Request], Awaitable[dict[str, Any] | None]]
F = TypeVar("F", bound=Callable[..., Any])

_ID = re.compile(ID_PATTERN)


def valid_id(value: str | None) -> bool:
    """An identifier FastAPI's Path/Query(pattern=ID_PATTERN, max_length=128) would accept."""
    return value is not None and _ID.fullmatch(value) is not None


def query_values(request: Request) -> dict[str, str]:
    """The query's parameters, the last value of each, as Starlette's QueryParams.get gives
    them; split by hand when nothing in it needs decoding (the common case), which costs a
    fraction of Starlette's parse_qsl."""
    raw: bytes = request.scope["query_string"]
    if not raw:
        return {}
    if b"%" in raw or b"+" in raw:
        return dict(request.query_params)
    values: dict[str, str] = {}
    for pair in raw.decode("latin-1").split("&"):
        if pair:
            name, _, value = pair.partition("=")
            values[name] = value
    return values


def authorised(request: Request, accepted: tuple[str, ...]) -> bool:
    """The caller's key is valid and holds one of `accepted` (app/api/auth.py): kept on
    request.state as the auth dependency does. False leaves the answer to FastAPI's path."""
    caller = auth.caller_if_allowed(request, accepted)
    if caller is None:
        return False
    request.state.caller = caller
    return True


def fast_path(check: Check) -> Callable[[F], F]:
    def mark(endpoint: F) -> F:
        endpoint.fast_path_check = check  # type: ignore[attr-defined]
        return endpoint

    return mark


class FastPathRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        slow = super().get_route_handler()
        check: Check | None = getattr(self.endpoint, "fast_path_check", None)
        if check is None:
            return slow
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            arguments = await check(request)
            if arguments is None:
                return await slow(request)
            response: Response = await endpoint(**arguments)
            return response

        return handler
