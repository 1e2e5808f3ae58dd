"""A fast path past FastAPI's dependency solving for the hottest routes, for valid requests only.

FastAPI solves a route's dependencies and validates its parameters on every request: for
GET /v1/availability/{sku} that machinery cost more than the store call itself (profile in
docs/benchmarks.md). A route marked `@fast_path` on a router with `route_class=FastPathRoute`
does the same work with less machinery, and with nothing written twice:

- what it checks is read from the route's own `dependant` when the handler is built: the
  route's own dependencies are called (the auth dependency `auth.ScopeRequirement` with its
  `HTTPBearer`, `get_services`), and each path, query and body parameter is validated by
  FastAPI's own field of that parameter (the same pydantic validator, pattern, lengths);
- a route with anything it does not know (another dependency, a header or cookie parameter, a
  list or model parameter, an alias, no auth dependency, an endpoint that does not return a
  Response) is refused: `FastPathRefused` is raised at start-up (`verify`), not at the first
  request;
- when anything is off (a dependency raises, a parameter does not validate, the body is not
  `application/json` or not JSON, the client went away), the request takes FastAPI's own path,
  which answers with exactly the problem response it always has. Valid requests run the very
  same endpoint function with the very same arguments, only called directly.

`tests/security/test_fast_path.py` runs generated requests against an app with the fast path
and one built without it (`create_app(fast_path=False)`), and counts FastAPI's dependency
solving on each side. FastAPI's documented extension point for this is a custom APIRoute class
(`get_route_handler`).
"""

from __future__ import annotations

import inspect
import json
import re
import types
import typing
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import fastapi.routing
import orjson
from fastapi import FastAPI, Request, params
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_typed_return_annotation
from fastapi.middleware.asyncexitstack import AsyncExitStackMiddleware
from fastapi.routing import APIRoute, APIRouter, request_response
from pydantic import BaseModel
from starlette._exception_handler import wrap_app_handling_exceptions
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api import auth, deps, route_index
from app.api.headers import header

F = TypeVar("F", bound=Callable[..., Any])
Handler = Callable[[Request], Coroutine[Any, Any, Response]]

_SCALARS = (str, int, float, bool)
# Content types FastAPI parses as JSON for certain (it parses a few more; those take its path).
_JSON_TYPES = frozenset(
    {"application/json", "application/json; charset=utf-8", "application/json;charset=utf-8"}
)


class FastPathRefused(RuntimeError):
    """A fast-path route with something the fast path does not know how to do as FastAPI."""


def fast_path(endpoint: F) -> F:
    """Mark an endpoint of a FastPathRoute router to take the fast path."""
    endpoint.fast_path = True  # type: ignore[attr-defined]
    return endpoint


@dataclass(frozen=True)
class _Param:
    name: str  # the endpoint's argument
    alias: str  # the key in the path or query
    loc: tuple[str, ...]
    field: Any  # FastAPI's ModelField of this parameter: its own validator
    required: bool
    default: Any


# A dependency's value from the request alone: what the fast path runs for it.
Step = tuple[str | None, Callable[[Request], Awaitable[Any]]]


@dataclass(frozen=True)
class Plan:
    """What a route's dependant asks for, in the order FastAPI's solve_dependencies does it."""

    scopes: tuple[str, ...]  # the scopes of the route's auth dependency (for the docs/tests)
    dependencies: tuple[Step, ...]  # the endpoint's argument (None: unnamed) and its step
    path: tuple[_Param, ...]
    query: tuple[_Param, ...]
    body: _Param | None
    json_without_content_type: bool  # FastAPI's strict_content_type off
    request_names: tuple[str, ...]


def _refuse(route: str, why: str) -> FastPathRefused:
    return FastPathRefused(f"fast path of {route}: {why}; take it off the fast path or teach it")


def _no_other_parameters(d: Dependant, route: str, what: str) -> None:
    others = {
        "header": d.header_params,
        "cookie": d.cookie_params,
        "websocket": d.websocket_param_name,
        "response": d.response_param_name,
        "background tasks": d.background_tasks_param_name,
        "security scopes": d.security_scopes_param_name,
    }
    for kind, present in others.items():
        if present:
            raise _refuse(route, f"{what} has a {kind} parameter")


def _request_names(d: Dependant) -> tuple[str, ...]:
    return tuple(n for n in (d.request_param_name, d.http_connection_param_name) if n)


def _is_async(call: object) -> bool:
    """A coroutine function, or an object whose __call__ is one (FastAPI awaits both; it runs
    anything else in a thread, and a generator dependency needs its exit stack)."""
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(
        getattr(call, "__call__", None)  # noqa: B004 - the method, not callable()
    )


def _takes_only_the_request(d: Dependant, route: str) -> None:
    what = f"dependency {d.call!r}"
    _no_other_parameters(d, route, what)
    if d.path_params or d.query_params or d.body_params:
        raise _refuse(route, f"{what} has parameters of its own")
    if not _is_async(d.call):
        raise _refuse(route, f"{what} is not a coroutine function")


def _step(d: Dependant, route: str, scopes: list[str]) -> Step:
    """The fast path's step for one of the endpoint's dependencies, if it is one it knows."""
    _takes_only_the_request(d, route)
    call = d.call
    if isinstance(call, auth.ScopeRequirement):
        # Its one sub-dependency, HTTPBearer, only describes the scheme in OpenAPI: with
        # auto_error off it cannot raise, and `authorise` reads the header itself.
        bearer = auth.bearer_scheme
        if [sub.call for sub in d.dependencies] != [bearer] or bearer.auto_error:
            raise _refuse(route, f"{call!r} has other sub-dependencies than auth.bearer_scheme")
        _takes_only_the_request(d.dependencies[0], route)
        scopes.extend(call.accepted)
        return d.name, call.authorise
    if call is deps.get_services and not d.dependencies:
        return d.name, deps.get_services
    raise _refuse(route, f"unknown dependency {call!r}")


def _scalar(annotation: Any) -> bool:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return all(a is type(None) or a in _SCALARS for a in typing.get_args(annotation))
    return annotation in _SCALARS


def _param(field: Any, where: str, route: str) -> _Param:
    info = field.field_info
    if not _scalar(info.annotation) or info.validation_alias is not None:
        raise _refuse(route, f"{where} parameter {field.name} is not a plain scalar")
    if info.validate_default:
        raise _refuse(route, f"{where} parameter {field.name} validates its default")
    required = info.is_required()
    default = None if required else field.default
    return _Param(field.name, field.alias, (where, field.alias), field, required, default)


def _body(fields: list[Any], route: str) -> _Param | None:
    if not fields:
        return None
    (field,) = fields if len(fields) == 1 else (None,)
    if field is None:
        raise _refuse(route, "more than one body parameter")
    info = field.field_info
    model = info.annotation
    if (
        not isinstance(info, params.Body)
        or isinstance(info, params.Form)
        or info.embed
        or not (isinstance(model, type) and issubclass(model, BaseModel))
    ):
        raise _refuse(route, f"body parameter {field.name} is not one JSON model")
    return _Param(field.name, field.alias, ("body",), field, info.is_required(), None)


def plan_route(route: Any) -> Plan:
    """The fast path of `route` (an APIRoute or FastAPI's effective route of an included
    router), or FastPathRefused."""
    name = f"{sorted(route.methods)} {route.path}"
    dependant: Dependant = route.dependant
    _no_other_parameters(dependant, name, "the endpoint")
    if not _is_async(dependant.call):
        raise _refuse(name, "the endpoint is not a coroutine function")
    returns = get_typed_return_annotation(route.endpoint)
    if not (isinstance(returns, type) and issubclass(returns, Response)):
        raise _refuse(name, "the endpoint does not return a Response")
    scopes: list[str] = []
    dependencies = tuple(_step(d, name, scopes) for d in dependant.dependencies)
    if not scopes:
        raise _refuse(name, "no auth dependency (auth.require)")
    strict = route.strict_content_type
    if isinstance(strict, DefaultPlaceholder):
        strict = strict.value
    return Plan(
        scopes=tuple(dict.fromkeys(scopes)),
        dependencies=dependencies,
        path=tuple(_param(f, "path", name) for f in dependant.path_params),
        query=tuple(_param(f, "query", name) for f in dependant.query_params),
        body=_body(dependant.body_params, name),
        json_without_content_type=not strict,
        request_names=_request_names(dependant),
    )


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


def _validated(param: _Param, value: Any, arguments: dict[str, Any]) -> bool:
    if value is None:
        if param.required:
            return False
        arguments[param.name] = param.default
        return True
    validated, errors = param.field.validate(value, {}, loc=param.loc)
    if errors:
        return False
    arguments[param.name] = validated
    return True


# A run of 19 digits may be an integer past 64 bits, which orjson reads as a float.
_LONG_NUMBER = re.compile(rb"[0-9]{19}")


def _loads(raw: bytes) -> Any:
    """`json.loads(raw)`, FastAPI's parse of a body, by orjson where it gives the same value
    (a fifth of the instructions): not for a number of 19 digits or more, nor for what
    orjson refuses and json may take (NaN, a lone surrogate, a byte order mark...)."""
    if _LONG_NUMBER.search(raw) is None:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(raw)


def _parsed_as_json(plan: Plan, scope: Scope) -> bool:
    """FastAPI parses the body as JSON for certain (else its path decides)."""
    content_type = header(scope, "content-type")
    if content_type is None:
        return plan.json_without_content_type
    return content_type.lower() in _JSON_TYPES


async def _json_body(plan: Plan, request: Request) -> bytes | None:
    """The body when FastAPI would parse it as JSON; None to leave the request to FastAPI."""
    if not _parsed_as_json(plan, request.scope):
        return None
    return await request.body() or None


async def _read_body(receive: Receive) -> bytes:
    """The whole body, read as Starlette's `Request.stream` reads it (ClientDisconnect when
    the client leaves first), without its async generator and closing context."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


def _replaying(body: bytes, receive: Receive) -> Receive:
    """`receive` with `body` (already read) given first, as one message."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _failing(exc: Exception) -> Receive:
    async def receive() -> Message:
        raise exc

    return receive


async def arguments(
    plan: Plan, request: Request, read: bytes | None = None
) -> dict[str, Any] | Request:
    """The endpoint's arguments when every check passes; else the request for FastAPI's path,
    which answers it as it always has. `read`: the body, when the caller has read it already
    (a JSON body: `FastApp`).

    In solve_dependencies' order: the body is read first, then the dependencies run (auth), then
    path, query and body are validated."""
    body: Any = None
    if plan.body is not None:
        try:
            raw = await _json_body(plan, request) if read is None else (read or None)
        except Exception as exc:
            # Too large, or the client went away mid-body: a read that cannot be replayed.
            # FastAPI's path reads again and meets the same error, and answers it (413, or
            # 499 in the log for a client that left) as on every other route.
            return Request(request.scope, _failing(exc))
        try:
            body = _loads(raw) if raw is not None else None
        except (ValueError, RecursionError):  # FastAPI answers malformed or too deep JSON
            return request
        if body is None:
            return request
    arguments: dict[str, Any] = {}
    try:
        for name, step in plan.dependencies:
            value = await step(request)
            if name is not None:
                arguments[name] = value
    except Exception:  # a 401 or 403: FastAPI's path runs the same code again and answers it
        return request
    path = request.path_params
    for param in plan.path:
        if not _validated(param, path.get(param.alias), arguments):
            return request
    if plan.query:
        query = query_values(request)
        for param in plan.query:
            if not _validated(param, query.get(param.alias), arguments):
                return request
    if plan.body is not None and not _validated(plan.body, body, arguments):
        return request
    for name in plan.request_names:
        arguments[name] = request
    return arguments


class FastPathRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        slow = super().get_route_handler()
        if not getattr(self.endpoint, "fast_path", False):
            return slow
        # The route as FastAPI builds it for this inclusion (a router's prefix and
        # include-level dependencies added), exactly as APIRoute.get_route_handler picks it.
        route: Any = self
        effective = fastapi.routing._effective_route_context_var.get()
        if effective is not None and effective.original_route is self:
            route = effective
        route_plan = plan_route(route)
        endpoint = self.endpoint
        overrides = route.dependency_overrides_provider

        async def handler(request: Request) -> Response:
            if not request.app.state.fast_path or (
                overrides is not None and overrides.dependency_overrides
            ):
                return await slow(request)
            values = await arguments(route_plan, request)
            if isinstance(values, Request):
                return await slow(values)
            response: Response = await endpoint(**values)
            return response

        return handler

    def asgi_app(self) -> ASGIApp:
        """The route's ASGI app, as `request_response(self.get_route_handler())` (what FastAPI
        builds); for a fast-path route with a JSON body (POST /v1/holds) with less around
        the endpoint (`FastApp`). Used for the app's own routes (app/api/main.py `_include`).

        A fast-path GET keeps FastAPI's `request_response`: the availability target compares
        GET /v1/availability with /healthz of the same server, which crosses it too."""
        if not getattr(self.endpoint, "fast_path", False):
            return request_response(self.get_route_handler())
        plan = plan_route(self)
        if plan.body is None:
            return request_response(self.get_route_handler())
        slow = request_response(super().get_route_handler())
        return FastApp(plan, self.endpoint, self.dependency_overrides_provider, slow)


# Set on the scope by the request frame's shortcut (`Shortcuts`) when the fast path declined a
# request: the route's own app then takes FastAPI's path at once instead of trying again.
DECLINED = "omnistock.fast_path_declined"


class FastApp:
    """The fast path as the route's ASGI app: the body read straight from `receive`, the
    arguments checked (`arguments`), the endpoint called and its response sent. Anything else
    goes to `slow`, FastAPI's own app of the route (the body, when read, given to it again).

    What FastAPI's `request_response` adds around a route's handler is left out here, since
    on this path it does nothing: its two exit stacks are for dependencies with `yield` (the
    fast path has none: `plan_route`), and its exception wrapper looks up the same handlers
    (the app's, from the scope) as the ExceptionMiddleware the exception reaches instead."""

    def __init__(
        self, plan: Plan, endpoint: Callable[..., Any], overrides: Any, slow: ASGIApp
    ) -> None:
        self.plan = plan
        self.endpoint = endpoint
        self.overrides = overrides
        self.slow = slow

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get(DECLINED):
            await self.slow(scope, receive, send)
            return
        response, receive = await self.attempt(scope, receive, send)
        if response is None:
            await self.slow(scope, receive, send)
        else:
            await response(scope, receive, send)

    async def attempt(
        self, scope: Scope, receive: Receive, send: Send
    ) -> tuple[Response | None, Receive]:
        """The endpoint's response, and the `receive` to send it with; or None and the
        `receive` FastAPI's path is to read the request with (the body given again, or the
        error its read met). Nothing is sent: an exception raised here is the endpoint's."""
        plan = self.plan
        if not scope["app"].state.fast_path or (
            self.overrides is not None and self.overrides.dependency_overrides
        ):
            return None, receive
        read = None
        if plan.body is not None:
            if not _parsed_as_json(plan, scope):
                return None, receive
            try:
                read = await _read_body(receive)
            except Exception as exc:  # as in `arguments`: FastAPI's path meets it again
                return None, _failing(exc)
            receive = _replaying(read, receive)
        request = Request(scope, receive, send)
        if read is not None:
            # Starlette's cache of the body (what `Request.body()` fills and returns): the
            # route's Idempotency-Key fingerprint reads it without a second read of `receive`.
            request._body = read
        values = await arguments(plan, request, read)
        if isinstance(values, Request):
            return None, receive
        response: Response = await self.endpoint(**values)
        return response, receive


class Shortcut:
    """A fast-path route called straight from the request frame (app/api/asgi.py), past the
    layers FastAPI puts between them: the ExceptionMiddleware, the exit stack middleware and
    the router, which cost 68k instructions of a 643k flash hold in process (docs/benchmarks.md,
    "Session 8, the hold's Python"). It does what they would do for this request: puts the
    exception handlers and the router's match on the scope, answers an exception the endpoint
    raises through Starlette's own handling of it (`wrap_app_handling_exceptions`), and hands a
    request the fast path declines to `inner`, the frame's own app (those layers), marked so
    that the route's app takes FastAPI's path at once."""

    def __init__(
        self,
        route: Any,
        app: FastApp,
        child_scope: Scope,
        router: Any,
        handlers: Any,
        inner: ASGIApp,
    ) -> None:
        self.route = route
        self.app = app
        self.child_scope = child_scope
        self.router = router
        self.handlers = handlers
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["starlette.exception_handlers"] = self.handlers  # as the ExceptionMiddleware
        scope.setdefault("router", self.router)  # as the router's walk on a full match
        scope.update(self.child_scope)
        scope["path_params"] = {}
        # An exception is handled with the `receive` the ExceptionMiddleware would have had.
        try:
            response, given = await self.app.attempt(scope, receive, send)
        except Exception as exc:
            await _handled(exc, False, scope, receive, send)
            return
        if response is None:
            scope[DECLINED] = True
            await self.inner(scope, given, send)
            return
        try:
            await response(scope, given, send)
        except Exception as exc:
            await _handled(exc, True, scope, receive, send)


_STARTED: Message = {"type": "http.response.start", "status": 500, "headers": []}


async def _dropped(message: Message) -> None:
    pass


async def _handled(
    exc: Exception, started: bool, scope: Scope, receive: Receive, send: Send
) -> None:
    """What the ExceptionMiddleware does with `exc` raised inside it, by its own code: the
    answer of the exception's handler, or `exc` raised on when none (and a RuntimeError when
    the response had already started); `started` is told to that code by a start message that
    goes nowhere."""

    async def again(scope: Scope, receive: Receive, send: Send) -> None:
        if started:
            await send(_STARTED)
        raise exc

    conn = Request(scope, receive, send)
    await wrap_app_handling_exceptions(again, conn)(scope, receive, _dropped if started else send)


class Shortcuts:
    """The request frame's dispatch: `shortcuts(scope)` is the app for this request, the
    route's `Shortcut` for a method and literal path whose first full match is a fast-path
    route with a body (POST /v1/holds), else `inner`. Only while `inner` is FastAPI's own
    ExceptionMiddleware over its exit stack middleware over the app's router with its index
    (no CORS middleware in between, the fast path installed); made again whenever the index
    is (any change of the router's routes: route_index.py)."""

    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner
        self.indexed: route_index.IndexedRouter | None = None
        self.made_from: object = None  # the index the table was made with
        self.table: dict[tuple[str, str], Shortcut] = {}
        exit_stack = getattr(inner, "app", None)
        router = getattr(exit_stack, "app", None)
        if (
            type(inner) is ExceptionMiddleware
            and type(exit_stack) is AsyncExitStackMiddleware
            and isinstance(router, APIRouter)
            and isinstance(router.middleware_stack, route_index.IndexedRouter)
        ):
            self.indexed = router.middleware_stack
            self.handlers = (inner._exception_handlers, inner._status_handlers)

    def _build(self, indexed: route_index.IndexedRouter) -> None:
        router = indexed.router
        self.table = {}
        for route in router.routes:
            if not isinstance(route, APIRoute) or "{" in route.path:
                continue
            app = route.app
            if not isinstance(app, FastApp):
                continue
            for method in route.methods or ():
                probe = {"type": "http", "method": method, "path": route.path, "root_path": ""}
                first = next((r for r in router.routes if r.matches(probe)[0] is Match.FULL), None)
                if first is not route:  # another route answers it: the router's walk decides
                    continue
                _, child = route.matches(probe)
                shortcut = Shortcut(route, app, child, router, self.handlers, self.inner)
                self.table[(method, route.path)] = shortcut

    def __call__(self, scope: Scope) -> ASGIApp:
        indexed = self.indexed
        if indexed is None or scope.get("root_path") or "fastapi.telemetry" in scope:
            return self.inner
        index = indexed.fresh()
        if index is not self.made_from:
            self._build(indexed)
            self.made_from = index
        return self.table.get((scope["method"], scope["path"]), self.inner)


def install(app: FastAPI, enabled: bool) -> None:
    """Switch the fast path on or off for `app`, and build every route's handler now: a
    fast-path route the fast path does not know stops the start (FastPathRefused) instead of
    failing its first request."""
    app.state.fast_path = enabled
    pending = list(app.router.routes)
    while pending:
        route = pending.pop()
        effective_candidates = getattr(route, "effective_candidates", None)  # included routers
        if effective_candidates is not None:
            pending.extend(effective_candidates())
