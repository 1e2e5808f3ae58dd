"""Routing by an index: a request meets only the routes that could match its path.

FastAPI's router tries its routes in order until one matches in full: `POST /v1/holds` is
matched after ten others, each a regular expression, a dict of path parameters and FastAPI's
effective-route look-up (12 % of an in-process flash hold; docs/benchmarks.md,
"Session 7, the hold's Python"). A route's pattern starts with its literal prefix (its path up
to the first parameter: `/v1/holds/` of `/v1/holds/{hold_id}`), so a request can only match
the routes whose prefix agrees with its path. The index keeps, for the first two segments of
every route's prefix (`/v1/holds`, `/v1/availability`, `/healthz`), the routes that could match
a path starting so, in the router's order; a request tries only those, with the routes' own
`matches`, and the first full match is the one the router's walk would find.

Anything else takes the router's own walk, which answers it as it always has: a path whose
first segments begin no route, a request no route matches in full (the 405 of a route matched
only in part, the redirect of a trailing slash, 404), a scope that is not HTTP or has a root
path. A route of a kind the index does not know (anything but plain routes and mounts) is
tried by every request, in its place.

When the router's routes change, the index is made again before the next request, whatever
the change: a route added, removed or replaced in place (the same number of routes), the list
reordered or `router.routes` given a new list. The index takes the router's list over as a
`RouteList`, a list that counts its changes, so a request checks two things (the list is the
one the index was made of, and its count is the same), not every route. What is not seen is a
route object changed in place (its path or methods): routes are replaced, not edited.
tests/api/test_route_index.py checks every route of the app against the walk, and the index
after each kind of change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, APIRouter, APIWebSocketRoute
from starlette.routing import BaseRoute, Match, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

# The kinds whose `matches` only tests the path against `path_regex` (and the method):
# FastAPI's own add only the route to the scope, outside an included router's context.
_KNOWN = (APIRoute, APIWebSocketRoute, Route, WebSocketRoute, Mount)


def key_of(path: str) -> str:
    """The path's first two segments: `/v1/holds` of `/v1/holds/H1/commit`."""
    first = path.find("/", 1)
    if first < 0:
        return path
    second = path.find("/", first + 1)
    return path if second < 0 else path[:second]


def _prefix(route: BaseRoute) -> str | None:
    """The literal start of every path `route` can match; None: any path (a kind not known)."""
    if type(route).matches not in {kind.matches for kind in _KNOWN}:
        return None
    path_format: str = getattr(route, "path_format", "")
    return path_format.split("{", 1)[0] if path_format.startswith("/") else None


def build(routes: Sequence[BaseRoute]) -> dict[str, tuple[BaseRoute, ...]]:
    """{key: the routes, in order, that could match a path with that key}."""
    prefixes = [(route, _prefix(route)) for route in routes]
    keys = {key_of(p) for _, p in prefixes if p is not None}
    return {
        key: tuple(
            route
            for route, p in prefixes
            if p is None or p.startswith(key) or key.startswith(p)  # a path starting with key
        )
        for key in keys
    }


class RouteList(list[BaseRoute]):
    """The router's routes, with `changes`: how many times the list has been changed (every
    method that changes a list counts; reading costs what a list's does)."""

    __slots__ = ("changes",)

    def __init__(self, routes: Iterable[BaseRoute] = ()) -> None:
        super().__init__(routes)
        self.changes = 0


def _counted(name: str) -> Callable[..., Any]:
    change = getattr(list, name)

    def method(self: RouteList, *args: Any, **kwargs: Any) -> Any:
        self.changes += 1
        return change(self, *args, **kwargs)

    method.__name__ = name
    return method


for _name in (
    "__setitem__",
    "__delitem__",
    "__iadd__",
    "__imul__",
    "append",
    "extend",
    "insert",
    "pop",
    "remove",
    "clear",
    "sort",
    "reverse",
):
    setattr(RouteList, _name, _counted(_name))


class IndexedRouter:
    """The router's ASGI app (`router.middleware_stack`), with the index in front of its walk
    (`walk`: the router's own app)."""

    def __init__(self, router: APIRouter, walk: ASGIApp) -> None:
        self.router = router
        self.walk = walk
        self.routes: RouteList | None = None  # the list the index was made of
        self.changes = 0  # and its count of changes then
        self.index: dict[str, tuple[BaseRoute, ...]] = {}

    def _remake(self) -> None:
        routes = self.router.routes
        if not isinstance(routes, RouteList):  # first use, or a new list given to the router
            routes = self.router.routes = RouteList(routes)
        self.index = build(routes)
        self.routes, self.changes = routes, routes.changes

    def _candidates(self, scope: Scope) -> tuple[BaseRoute, ...] | None:
        routes = self.router.routes
        if routes is not self.routes or routes.changes != self.changes:
            self._remake()
        # FastAPI's telemetry records the selected route on the walk; none here when it is on.
        if scope["type"] != "http" or scope.get("root_path") or "fastapi.telemetry" in scope:
            return None
        return self.index.get(key_of(scope["path"]))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The first full match, as the walk's (a route matched in part before it, such as
        # GET /v1/holds for a POST, does not count when a later one matches in full).
        for route in self._candidates(scope) or ():
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                # What the walk does with a full match of a route outside an included router.
                scope.setdefault("router", self.router)
                scope.update(child_scope)
                await route.handle(scope, receive, send)
                return
        await self.walk(scope, receive, send)


def install(app: FastAPI) -> None:
    """Put the index in front of the app's router, when FastAPI's walk is its whole app (no
    router middleware) and sets nothing more on a match (no form limits) than the index does."""
    router = app.router
    if router.middleware_stack != router.app or getattr(router, "form_limits", None):
        return
    router.middleware_stack = IndexedRouter(router, router.app)
