"""The route index (app/api/route_index.py) selects the route FastAPI's walk selects, with the
same scope, for every route of the service and for paths no route matches; what it does not
match in full goes to the walk, which answers as it always has."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import Message, Receive, Scope, Send

from app.api.main import create_app
from app.api.route_index import IndexedRouter, key_of
from app.settings import Settings

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# The hot routes: the index answers them without the walk.
HOT = [("POST", "/v1/holds"), ("GET", "/v1/availability/SKU-1"), ("GET", "/healthz")]


def paths_of(routes: list[BaseRoute]) -> Iterator[str]:
    """A path each route matches, and neighbours of it (a trailing slash, one more
    segment, a segment less): the places where a wrong index would pick another route."""
    for route in routes:
        path_format = getattr(route, "path_format", None)
        if not path_format:
            continue
        path = re.sub(r"\{[^}]+\}", "x1", path_format)
        yield from (path, path + "/", path + "/extra", path.rsplit("/", 1)[0] or "/")
    yield from ("/", "/nope", "/v1", "/v1/", "/v1/nope/x", "/v1/holds//commit", "//")


class Recorder:
    """Dispatches a request through an ASGI router with every route's `handle` replaced by
    one that records the route and the scope it got; other answers are recorded by status."""

    def __init__(self, routes: list[BaseRoute], monkeypatch: pytest.MonkeyPatch) -> None:
        self.handled: list[tuple[BaseRoute, dict[str, Any]]] = []
        for route in routes:
            monkeypatch.setattr(route, "handle", self._handler(route))

    def _handler(self, route: BaseRoute) -> Callable[[Scope, Receive, Send], Any]:
        async def handle(scope: Scope, receive: Receive, send: Send) -> None:
            self.handled.append((route, dict(scope)))

        return handle

    async def outcome(self, dispatch: Any, method: str, path: str) -> tuple[Any, ...]:
        scope: dict[str, Any] = {
            "type": "http",
            "method": method,
            "path": path,
            "root_path": "",
            "query_string": b"",
            "headers": [],
        }
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            sent.append(message)

        self.handled.clear()
        try:
            await dispatch(scope, receive, send)
        except HTTPException as exc:
            return ("raised", exc.status_code)
        if self.handled:
            route, seen = self.handled[0]
            return ("handled", route, seen)
        return ("sent", sent[0]["status"])


class CountingWalk:
    def __init__(self, walk: Any) -> None:
        self.walk = walk
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        await self.walk(scope, receive, send)


def assert_same_selection(
    app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
    paths: list[str],
    methods: tuple[str, ...] = METHODS,
) -> CountingWalk:
    """Every method on every path: the index's outcome is the walk's. Returns the walk the
    index fell back to, with its count of calls."""
    router = app.router
    recorder = Recorder(router.routes, monkeypatch)
    walk = CountingWalk(router.app)
    index = IndexedRouter(router, walk)

    async def check() -> None:
        for method, path in itertools.product(methods, paths):
            expected = await recorder.outcome(router.app, method, path)
            got = await recorder.outcome(index, method, path)
            assert got == expected, (method, path)

    asyncio.run(check())
    return walk


@pytest.fixture
def service(settings: Settings) -> FastAPI:
    return create_app(settings)


def test_every_route_of_the_service_is_selected_as_the_walk_selects_it(
    service: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_same_selection(service, monkeypatch, sorted(set(paths_of(service.router.routes))))


@pytest.mark.parametrize(("method", "path"), HOT)
def test_a_hot_route_is_selected_without_the_walk(
    service: FastAPI, monkeypatch: pytest.MonkeyPatch, method: str, path: str
) -> None:
    walk = assert_same_selection(service, monkeypatch, [path], (method,))
    assert walk.calls == 0


class _Anywhere(Route):
    """A route kind the index does not know: it matches any path under /a/ ending in /z."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["path"].startswith("/a/") and scope["path"].endswith("/z"):
            return Match.FULL, {"endpoint": self.endpoint, "path_params": {}}
        return Match.NONE, {}


def _shadowing_app() -> FastAPI:
    """Routes that shadow one another: a parameter before a literal, one path with two
    methods on two routes, a root parameter, a mount, a path converter, an unknown kind."""

    async def endpoint() -> None: ...

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None: ...

    app = FastAPI()
    app.router.routes.extend(
        [
            Route("/a/{x}", endpoint, methods=["GET"]),
            Route("/a/b", endpoint, methods=["GET", "POST"]),
            _Anywhere("/unused", endpoint, methods=["GET"]),
            Route("/a/{x}/z", endpoint, methods=["GET"]),
            Route("/a/b/c", endpoint, methods=["GET"]),
            Route("/a/b/c", endpoint, methods=["DELETE"]),
            Route("/{x}/c", endpoint, methods=["PUT"]),
            Route("/files/{rest:path}", endpoint, methods=["GET"]),
            Mount("/m", app=asgi),
            Route("/ab", endpoint, methods=["GET"]),
        ]
    )
    return app


def test_routes_that_shadow_one_another_are_selected_as_the_walk_selects_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = _shadowing_app()
    paths = ["/a/b", "/a/b/", "/a/b/c", "/a/q/z", "/a/b/z", "/q/c", "/a/c", "/ab", "/abc"]
    paths += ["/files/x/y", "/files", "/m", "/m/", "/m/x/y", "/a", "/", "/b/c/d"]
    assert_same_selection(app, monkeypatch, paths)


# Changes of the routes after the index's first request: the route at `at` gives way to `new`.
def _insert_before(router: APIRouter, at: int, new: BaseRoute) -> None:
    router.routes.insert(at, new)


def _replace_in_place(router: APIRouter, at: int, new: BaseRoute) -> None:
    router.routes[at] = new  # the same number of routes


def _remove_then_add(router: APIRouter, at: int, new: BaseRoute) -> None:
    del router.routes[at]
    router.routes.insert(at, new)


def _new_list(router: APIRouter, at: int, new: BaseRoute) -> None:
    router.routes = [*router.routes[:at], new, *router.routes[at + 1 :]]


def _slice(router: APIRouter, at: int, new: BaseRoute) -> None:
    router.routes[at : at + 1] = [new]


CHANGES = [_insert_before, _replace_in_place, _remove_then_add, _new_list, _slice]


@pytest.mark.parametrize("change", CHANGES, ids=lambda c: c.__name__.strip("_"))
def test_the_index_follows_any_change_of_the_routes_after_its_first_request(
    monkeypatch: pytest.MonkeyPatch, change: Callable[[APIRouter, int, BaseRoute], None]
) -> None:
    """One index across the change (the service's: made at start-up, used ever after). The
    new route equals the one it displaces (same path, endpoint and methods), so only the
    route object tells them apart: the request must reach the new one, as the walk does."""
    app = _shadowing_app()
    router = app.router
    at = next(i for i, r in enumerate(router.routes) if getattr(r, "path", "") == "/a/{x}")
    old = router.routes[at]
    assert isinstance(old, Route)
    new = Route(old.path, old.endpoint, methods=["GET"])
    assert new == old
    recorder = Recorder([*router.routes, new], monkeypatch)
    index = IndexedRouter(router, router.app)

    async def selected(dispatch: Any) -> BaseRoute:
        outcome = await recorder.outcome(dispatch, "GET", "/a/b")
        assert outcome[0] == "handled", outcome
        route: BaseRoute = outcome[1]
        return route

    assert asyncio.run(selected(index)) is old
    change(router, at, new)
    assert asyncio.run(selected(router.app)) is new  # the walk
    assert asyncio.run(selected(index)) is new


def test_the_key_is_the_first_two_segments() -> None:
    assert key_of("/v1/holds/H1/commit") == "/v1/holds"
    assert key_of("/v1/holds") == "/v1/holds"
    assert key_of("/healthz") == "/healthz"
    assert key_of("/") == "/"


# -- through the service: what the index does not match in full, FastAPI answers ----------

REQUESTS = [
    ("GET", "/v1/nothing-here"),  # 404 problem, no route starts so
    ("GET", "/v1/holds/H1/nothing"),  # 404 problem, the index's key but no route
    ("DELETE", "/v1/holds"),  # 405 with Allow: matched only in part
    ("PUT", "/healthz"),
    ("GET", "/v1/availability/SKU-1/"),  # a trailing slash
    ("GET", "/board"),  # the mount, without its slash
    ("GET", "/v1/availability/bad%20sku"),  # matched, refused by the route: 422 problem
]


@pytest.mark.parametrize(("method", "path"), REQUESTS)
async def test_a_request_the_index_does_not_match_in_full_is_answered_as_without_it(
    settings: Settings, method: str, path: str
) -> None:
    answers = []
    for fast in (True, False):
        app = create_app(settings, fast_path=fast)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://omnistock") as c:
            r = await c.request(method, path, headers={"x-request-id": "same"})
        answers.append((r.status_code, r.headers.get("allow"), r.headers.get("location"), r.text))
    assert answers[0] == answers[1]
    assert answers[0][0] >= 300
