"""The fast path of the hot routes (app/api/fast_path.py) answers exactly as FastAPI's own
path does: the same status, body and auth challenge for every request, valid or not.

Each request goes to two apps on the same store: the service as built, and the service built
with `create_app(fast_path=False)`, which serves every request through FastAPI's dependency
solving. That the second really does, and the first really does not for valid requests, is
counted, not assumed: every call of FastAPI's `solve_dependencies` is counted per app.
The requests are generated (hypothesis): headers, Authorization variants, query strings,
bodies, Content-Types.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote, quote_plus

import fastapi.routing
import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Header
from fastapi.dependencies.utils import solve_dependencies
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from starlette.exceptions import HTTPException
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.responses import Response
from starlette.types import Message

from app.api import auth, deps, hold_routes, stock_routes
from app.api import fast_path as fast_paths
from app.api.asgi import Frame
from app.api.deps import ServicesDep
from app.api.fast_path import FastPathRefused, FastPathRoute, fast_path, plan_route
from app.api.main import create_app
from app.domain.clock import ManualClock
from app.domain.models import ID_PATTERN
from app.settings import Settings
from tests.conftest import seed
from tests.security.conftest import WRONG_KEY, bearer

T = TypeVar("T")
PLENTY = 1_000_000  # units at each location: the valid holds of a run never sell out


@dataclass
class Sent:
    method: str
    path: str
    query: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None


class Pair:
    """The service twice on one store, in a loop of its own (hypothesis runs examples
    synchronously): `fast` as built, `slow` with the fast path off."""

    def __init__(self, settings: Settings, clock: ManualClock) -> None:
        self.fast = create_app(settings, clock)
        self.slow = create_app(settings, clock, fast_path=False)
        self.loop = asyncio.new_event_loop()
        self.solves: Counter[int] = Counter()  # id(app) -> calls of solve_dependencies

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    async def _send(self, app: FastAPI, sent: Sent) -> tuple[httpx.Response, int]:
        before = self.solves[id(app)]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://omnistock") as c:
            url = sent.path + ("?" + sent.query if sent.query else "")
            r = await c.request(sent.method, url, headers=sent.headers, content=sent.body)
        return r, self.solves[id(app)] - before

    def both(self, sent: Sent) -> tuple[httpx.Response, int, httpx.Response, int]:
        fast, fast_solves = self.run(self._send(self.fast, sent))
        slow, slow_solves = self.run(self._send(self.slow, sent))
        return fast, fast_solves, slow, slow_solves


@pytest.fixture
def pair(
    settings: Settings,
    clock: ManualClock,
    api_keys: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Pair]:
    both = Pair(settings, clock)
    solve = solve_dependencies

    async def counted(*args: Any, **kwargs: Any) -> Any:
        both.solves[id(kwargs["request"].app)] += 1
        return await solve(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counted)
    contexts = [app.router.lifespan_context(app) for app in (both.fast, both.slow)]
    for context in contexts:
        both.run(context.__aenter__())

    async def stock() -> None:
        transport = httpx.ASGITransport(app=both.fast)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://omnistock", headers=bearer(api_keys["admin"])
        ) as admin:
            await seed(admin, {("SKU-1", "dc"): PLENTY, ("SKU-1", "store-a"): PLENTY})
        await both.slow.state.services.config.refresh(force=True)

    both.run(stock())
    try:
        yield both
    finally:
        for context in reversed(contexts):
            both.run(context.__aexit__(None, None, None))
        both.loop.close()


# --- what the generated requests are made of ---------------------------------------------
# Each request is valid about half the time (so that the fast path answers many), anything
# from the lists below otherwise.

KEY_NAMES = ("read", "reserve", "admin", "pos:store-a", "wrong", "empty")
Auth = list[tuple[str, str, str, str]]  # (scheme, separator, key name, tail) per header


def _key(api_keys: dict[str, str], name: str) -> str:
    return {"wrong": WRONG_KEY, "empty": ""}.get(name, api_keys.get(name, ""))


def _headers(api_keys: dict[str, str], auth: Auth) -> list[tuple[str, str]]:
    return [
        ("Authorization", f"{scheme}{space}{_key(api_keys, key)}{tail}")
        for scheme, space, key, tail in auth
    ]


def good_auth(*names: str) -> st.SearchStrategy[Auth]:
    return st.sampled_from(names).map(lambda name: [("Bearer", " ", name, "")])


any_auth = st.lists(
    st.tuples(
        st.sampled_from(["Bearer", "bearer", "BEARER", "Basic", "Token", ""]),
        st.sampled_from([" ", "  ", "\t", ""]),
        st.sampled_from(KEY_NAMES),
        st.sampled_from(["", " ", "x"]),
    ),
    max_size=2,
)
any_id = st.one_of(
    st.sampled_from(["SKU-1", "SKU-404", "web", "dc", "nope", "S" * 129, "a b", "é", "x\n"]),
    st.text(st.sampled_from("Aa0._:-~ é\n+&=%"), min_size=1, max_size=6),
).filter(lambda s: s.strip(".") != "")  # "." and ".." are not path segments; nor is ""
encodings: st.SearchStrategy[Callable[[str], str]] = st.sampled_from(
    [quote, quote_plus, lambda v: quote(v, safe=":~")]
)


@st.composite
def any_query(draw: st.DrawFn) -> str:
    names = st.sampled_from(["channel", "location", "Channel", "unknown", ""])
    pairs = draw(st.lists(st.tuples(names, any_id, encodings, st.booleans()), max_size=3))
    parts = [n + ("=" + encode(v) if with_value else "") for n, v, encode, with_value in pairs]
    return "&".join(parts) + draw(st.sampled_from(["", "&"]))


good_id = st.from_regex(ID_PATTERN, fullmatch=True).filter(lambda s: s.strip(".") != "")
availability_requests = st.one_of(
    st.tuples(
        st.one_of(st.just("SKU-1"), good_id),
        st.sampled_from(["channel=web", "location=dc", "", "location=store-a", "x=1&channel=web"]),
        good_auth("read", "admin"),
    ),
    st.tuples(any_id, any_query(), any_auth),
)

JSON = "application/json"
any_content_type = st.sampled_from(
    [
        None,
        JSON,
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        "APPLICATION/JSON",
        " application/json",
        "application/json, text/plain",
        "application/merge-patch+json",
        "application/jsonx",
        "text/plain",
        "multipart/form-data",
        "",
    ]
)
any_quantity = st.sampled_from([1, 2, 0, -1, "2", 1.0, 1.5, 10**7, True, None, 2**70])
any_line = st.fixed_dictionaries(
    {"sku": st.sampled_from(["SKU-1", "SKU-404", "a b", 7]), "quantity": any_quantity},
    optional={"location": st.sampled_from(["dc", "store-a", "nope", ""]), "x": st.just(1)},
)
any_hold = st.fixed_dictionaries(
    {"lines": st.one_of(st.lists(any_line, max_size=3), st.just("x"))},
    optional={
        "channel": st.sampled_from(["web", "nope", None, 1]),
        "ttl_seconds": st.sampled_from([60, 0, -5, "60"]),
        "reference": st.text(max_size=4),
        "extra": st.just(True),
    },
)
good_line = st.fixed_dictionaries(
    {"sku": st.just("SKU-1"), "quantity": st.integers(1, 3)},
    optional={"location": st.sampled_from(["dc", "store-a"])},
)
good_hold = st.fixed_dictionaries(
    {"lines": st.lists(good_line, min_size=1, max_size=2)},
    optional={
        "channel": st.just("web"),
        "ttl_seconds": st.integers(1, 3600),
        "reference": st.text(max_size=8),
    },
)
any_body = st.one_of(
    any_hold.map(lambda v: json.dumps(v).encode()),
    st.sampled_from(
        [b"", b"{lines:", b"null", b"[]", b"\xff\xfe", b"[" * 3000 + b"]" * 3000, b'{"lines": NaN}']
    ),
)
hold_requests = st.one_of(
    st.tuples(good_hold.map(lambda v: json.dumps(v).encode()), st.just(JSON), good_auth("reserve")),
    st.tuples(any_body, any_content_type, any_auth),
)

HYPOTHESIS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


def _ms(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp() * 1000


def assert_same_answer(pair: Pair, sent: Sent) -> bool:
    """Both apps answer alike; FastAPI's dependency solving ran on the slow side, and on the
    fast side only where the fast path handed the request over. True if the fast path
    answered (no dependency solving on the fast side)."""
    fast, fast_solves, slow, slow_solves = pair.both(sent)
    assert fast.status_code == slow.status_code, (sent, fast.text, slow.text)
    for header in ("content-type", "www-authenticate"):
        assert fast.headers.get(header) == slow.headers.get(header), (sent, header)
    a, b = fast.json(), slow.json()
    if fast.status_code == 201:  # two holds: their own ids and store-clock instants
        assert a.pop("id") != b.pop("id")
        for instant in ("created_at", "expires_at"):
            assert abs(_ms(a.pop(instant)) - _ms(b.pop(instant))) < 60_000, sent
    assert a == b, sent
    # FastAPI's path solves once per request; only a body it cannot parse stops it before.
    assert slow_solves == 1 or b.get("errors", [{}])[0].get("type") == "json_invalid", sent
    assert fast_solves in (0, slow_solves), sent
    if fast.status_code < 300:
        assert fast_solves == 0, sent  # a valid request never took FastAPI's path
    return fast_solves == 0


def test_availability_answers_as_fastapi_does(pair: Pair, api_keys: dict[str, str]) -> None:
    fast_answers = 0

    @HYPOTHESIS
    @given(request=availability_requests)
    @example(request=("SKU-1", "channel=web", [("Bearer", " ", "read", "")]))
    @example(request=("SKU-1", "", [("Bearer", " ", "read", ""), ("Bearer", " ", "read", "")]))
    def check(request: tuple[str, str, Auth]) -> None:
        nonlocal fast_answers
        sku, query, auth = request
        path = "/v1/availability/" + quote(sku, safe="")
        fast_answers += assert_same_answer(pair, Sent("GET", path, query, _headers(api_keys, auth)))

    check()
    assert fast_answers > 20  # the fast path answered many: the comparison compared something


def test_hold_creation_answers_as_fastapi_does(pair: Pair, api_keys: dict[str, str]) -> None:
    fast_answers = 0
    valid = b'{"channel": "web", "lines": [{"sku": "SKU-1", "quantity": 1}]}'

    @HYPOTHESIS
    @given(request=hold_requests)
    @example(request=(valid, None, [("Bearer", " ", "reserve", "")]))
    @example(request=(valid, JSON, [("Bearer", " ", "reserve", ""), ("Bearer", " ", "x", "")]))
    def check(request: tuple[bytes, str | None, Auth]) -> None:
        nonlocal fast_answers
        body, content_type, auth = request
        headers = _headers(api_keys, auth)
        if content_type is not None:
            headers.append(("Content-Type", content_type))
        fast_answers += assert_same_answer(pair, Sent("POST", "/v1/holds", "", headers, body))

    check()
    assert fast_answers > 20


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("GET", "/v1/availability/SKU-1?channel=web", None),
        ("GET", "/v1/availability/SKU-1?location=dc", None),
        ("POST", "/v1/holds", b'{"lines": [{"sku": "SKU-1", "quantity": 1}]}'),
    ],
)
def test_a_valid_request_skips_dependency_solving_only_on_the_fast_path(
    pair: Pair, api_keys: dict[str, str], method: str, url: str, body: bytes | None
) -> None:
    path, _, query = url.partition("?")
    headers = [*bearer(api_keys["admin"]).items(), ("Content-Type", "application/json")]
    fast, fast_solves, slow, slow_solves = pair.both(Sent(method, path, query, headers, body))
    assert fast.status_code == slow.status_code < 300
    assert (fast_solves, slow_solves) == (0, 1)


def test_a_hold_without_content_type_is_422_on_both_paths(
    pair: Pair, api_keys: dict[str, str]
) -> None:
    """FastAPI parses a body as JSON only when it says so (strict_content_type): the fast path
    answered 201 to this."""
    body = b'{"lines": [{"sku": "SKU-1", "quantity": 1}]}'
    sent = Sent("POST", "/v1/holds", "", list(bearer(api_keys["reserve"]).items()), body)
    fast, _, slow, _ = pair.both(sent)
    assert (fast.status_code, slow.status_code) == (422, 422)
    assert fast.json() == slow.json()


# --- a client that goes away mid-body --------------------------------------------------------

PART_OF_A_HOLD = b'{"channel": "web", "lines": [{"sku": "SK'


async def _cut_mid_body(app: FastAPI, method: str, path: str, key: str) -> list[Message]:
    """The request as a server hands it over when the client closes the connection after
    part of the body: one chunk, then http.disconnect (and again on every later receive)."""
    chunks = iter([{"type": "http.request", "body": PART_OF_A_HOLD, "more_body": True}])

    async def receive() -> Message:
        return next(chunks, {"type": "http.disconnect"})

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    headers = [
        (b"authorization", f"Bearer {key}".encode()),
        (b"content-type", b"application/json"),
        (b"content-length", b"200"),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("omnistock", 80),
    }
    await app(scope, receive, send)
    return sent


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/holds"), ("PUT", "/v1/stock/SKU-1/dc")],
    ids=["fast path", "FastAPI's path"],
)
async def test_a_client_gone_mid_body_is_logged_499_without_a_traceback(
    app: FastAPI,
    api_keys: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
) -> None:
    """The fast path answered this with a logged 500 and a traceback."""
    caplog.set_level(logging.INFO)
    await _cut_mid_body(app, method, path, api_keys["admin"])
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    (access,) = [r for r in caplog.records if r.name == "omnistock.access"]
    assert access.fields["status"] == 499  # type: ignore[attr-defined]


@pytest.mark.slow
def test_a_real_service_logs_a_client_gone_mid_body_as_499_without_a_traceback(
    start_service: Any, store_url: str, keys_file: tuple[Path, dict[str, str]]
) -> None:
    path, api_keys = keys_file
    service = start_service(OMNISTOCK_REDIS_URL=store_url, OMNISTOCK_API_KEYS_FILE=str(path))
    head = (
        "POST /v1/holds HTTP/1.1\r\nHost: omnistock\r\n"
        f"Authorization: Bearer {api_keys['reserve']}\r\n"
        "Content-Type: application/json\r\nContent-Length: 200\r\n"
        "X-Request-ID: cut-mid-body\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", service.port), timeout=5) as sock:
        sock.sendall(head.encode() + PART_OF_A_HOLD)
        time.sleep(0.2)  # the service is waiting for the rest of the body
    deadline = time.monotonic() + 10
    while "cut-mid-body" not in (log := service.log_path.read_text()):
        assert time.monotonic() < deadline, log[-3000:]
        time.sleep(0.05)
    assert "Traceback" not in log and "internal_error" not in log, log[-3000:]
    (line,) = [json.loads(x) for x in log.splitlines() if "cut-mid-body" in x]
    assert line["status"] == 499, line


# --- what the fast path knows, it derives; what it does not know, it refuses --------------


async def _other() -> int:
    return 1


def _fast_router() -> APIRouter:
    return APIRouter(route_class=FastPathRoute)


def test_the_fast_path_takes_its_scopes_from_the_route() -> None:
    routes: dict[str, Any] = {
        r.name: r
        for r in [*stock_routes.router.routes, *hold_routes.router.routes]
        if isinstance(r, fastapi.routing.APIRoute)
    }
    assert plan_route(routes["get_availability"]).scopes == ("read",)
    assert plan_route(routes["create_hold"]).scopes == ("reserve",)

    router = _fast_router()

    @router.get("/x", dependencies=[auth.ADMIN])
    @fast_path
    async def endpoint() -> Response:
        return Response()

    assert plan_route(router.routes[0]).scopes == ("admin",)


def test_a_fast_path_route_with_a_dependency_it_does_not_know_is_refused() -> None:
    with pytest.raises(FastPathRefused, match="unknown dependency"):

        @_fast_router().get("/x", dependencies=[auth.READ, Depends(_other)])
        @fast_path
        async def endpoint() -> Response:
            return Response()


def test_a_fast_path_route_with_a_header_parameter_is_refused() -> None:
    with pytest.raises(FastPathRefused, match="header parameter"):

        @_fast_router().get("/x", dependencies=[auth.READ])
        @fast_path
        async def endpoint(x_thing: Annotated[str, Header()]) -> Response:
            return Response()


def test_a_fast_path_route_without_an_auth_dependency_is_refused() -> None:
    with pytest.raises(FastPathRefused, match="no auth dependency"):

        @_fast_router().get("/x")
        @fast_path
        async def endpoint(services: ServicesDep) -> Response:
            return Response()


def test_a_dependency_added_where_the_router_is_included_is_refused_at_start_up() -> None:
    router = _fast_router()

    @router.get("/x", dependencies=[auth.READ])
    @fast_path
    async def endpoint() -> Response:
        return Response()

    application = FastAPI()
    application.include_router(router, dependencies=[Depends(_other)])
    with pytest.raises(FastPathRefused, match="unknown dependency"):
        fast_paths.install(application, enabled=True)


def test_dependency_overrides_send_every_request_through_fastapi(
    pair: Pair, api_keys: dict[str, str]
) -> None:
    """An override (as tests set them) is something only FastAPI's path honours."""
    pair.fast.dependency_overrides[deps.get_services] = deps.get_services
    sent = Sent("GET", "/v1/availability/SKU-1", "", list(bearer(api_keys["read"]).items()))
    fast, fast_solves, _, _ = pair.both(sent)
    assert (fast.status_code, fast_solves) == (200, 1)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # unbounded: past 64 bits too
    | st.floats()  # NaN and infinities too (json writes and reads them)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@HYPOTHESIS
@given(value=json_values)
@example(value=-9_999_999_999_999_999_999)  # 19 digits past 64 bits: a float in orjson
@example(value=2**64 + 1)
@example(value={"a": "\ud800"})  # a lone surrogate: orjson refuses it
def test_the_fast_path_parses_a_body_to_the_value_json_loads_gives(value: Any) -> None:
    raw = json.dumps(value).encode()
    # repr tells 1 from 1.0 and True from 1, which == does not.
    assert repr(fast_paths._loads(raw)) == repr(json.loads(raw))


# --- the request frame's shortcut to the route (fast_path.Shortcuts) -----------------------


def _frame(app: FastAPI) -> Frame:
    layer: Any = app.build_middleware_stack()
    while not isinstance(layer, Frame):
        layer = layer.app
    return layer


def _scope(method: str, path: str, **more: Any) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, **more}


def test_the_request_frame_sends_only_post_v1_holds_straight_to_its_route(
    settings: Settings, clock: ManualClock
) -> None:
    frame = _frame(create_app(settings, clock))
    assert frame.dispatch is not None
    shortcut = frame.dispatch(_scope("POST", "/v1/holds"))
    assert isinstance(shortcut, fast_paths.Shortcut)
    assert shortcut.route.endpoint is hold_routes.create_hold
    for method, path in [
        ("GET", "/v1/holds"),
        ("POST", "/v1/holds/"),
        ("POST", "/v1/holds/h1/commit"),
        ("GET", "/v1/availability/SKU-1"),
        ("GET", "/healthz"),
    ]:
        assert frame.dispatch(_scope(method, path)) is frame.app, (method, path)
    assert frame.dispatch(_scope("POST", "/v1/holds", root_path="/api")) is frame.app


def test_the_shortcut_follows_any_change_of_the_routes(
    settings: Settings, clock: ManualClock
) -> None:
    """A route put before POST /v1/holds's (or in its place) answers it: no shortcut then."""
    app = create_app(settings, clock)
    frame = _frame(app)
    assert frame.dispatch is not None
    hold = _scope("POST", "/v1/holds")
    assert isinstance(frame.dispatch(hold), fast_paths.Shortcut)
    routes = app.router.routes
    (i,) = [
        i for i, r in enumerate(routes) if getattr(r, "endpoint", None) is hold_routes.create_hold
    ]
    create = routes[i]

    async def other() -> Response:
        return Response(status_code=204)

    routes.insert(i, APIRoute("/v1/holds", other, methods=["POST"]))
    assert frame.dispatch(hold) is frame.app
    del routes[i]
    assert isinstance(frame.dispatch(hold), fast_paths.Shortcut)
    routes[i] = APIRoute("/v1/holds", other, methods=["POST"])  # in place: the same count
    assert frame.dispatch(hold) is frame.app
    routes[i] = create
    shortcut = frame.dispatch(hold)
    assert isinstance(shortcut, fast_paths.Shortcut) and shortcut.route is create


def test_no_shortcut_without_the_fast_path_or_with_cors_in_between(
    settings: Settings, clock: ManualClock
) -> None:
    assert _frame(create_app(settings, clock, fast_path=False)).dispatch is None
    with_cors = settings.model_copy(update={"cors_origins": ("https://shop.example",)})
    frame = _frame(create_app(with_cors, clock))
    assert frame.dispatch is not None
    assert frame.dispatch(_scope("POST", "/v1/holds")) is frame.app


class _Handled(Exception):
    pass


class _Unhandled(Exception):
    pass


@pytest.mark.parametrize("started", [False, True], ids=["before-the-response", "after-its-start"])
@pytest.mark.parametrize(
    "error",
    [_Handled, _Unhandled, lambda: HTTPException(418, "teapot")],
    ids=["handled", "unhandled", "http-exception"],
)
async def test_an_endpoint_s_exception_is_answered_as_the_exception_middleware_answers_it(
    started: bool, error: Callable[[], Exception]
) -> None:
    """The shortcut skips the ExceptionMiddleware: what it does with an exception (the
    handler's answer, the exception raised on, a RuntimeError once the response started) is
    done by the middleware's own code (`fast_path._handled`)."""

    async def on_handled(request: Any, exc: Exception) -> Response:
        return Response("handled", status_code=409)

    async def endpoint(scope: Any, receive: Any, send: Any) -> None:
        if started:
            await send({"type": "http.response.start", "status": 201, "headers": []})
        raise error()

    middleware = ExceptionMiddleware(endpoint, handlers={_Handled: on_handled})

    async def shortcut(scope: Any, receive: Any, send: Any) -> None:
        scope["starlette.exception_handlers"] = (
            middleware._exception_handlers,
            middleware._status_handlers,
        )
        try:
            await endpoint(scope, receive, send)
        except Exception as exc:
            await fast_paths._handled(exc, started, scope, receive, send)

    async def outcome(app: Any) -> tuple[list[Message], str, str]:
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            sent.append(message)

        scope = _scope("POST", "/v1/holds", headers=[], query_string=b"")
        try:
            await app(scope, receive, send)
        except Exception as exc:
            return sent, f"{type(exc).__name__}: {exc}", type(exc.__cause__).__name__
        return sent, "", ""

    assert await outcome(shortcut) == await outcome(middleware)
