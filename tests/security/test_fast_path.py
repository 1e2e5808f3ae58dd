"""The fast path of the hot routes (app/api/fast_path.py) answers exactly as FastAPI's own
path does: the same status and body for every request, valid or not, with or without keys.

Each request goes to two apps on the same store: the service as built (fast path on) and one
built with the fast path switched off, so FastAPI validates and authenticates everything.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import fastapi.routing
import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from app.api import fast_path
from app.api.main import create_app
from app.domain.clock import ManualClock
from app.settings import Settings
from tests.conftest import seed
from tests.security.conftest import WRONG_KEY, bearer


@pytest.fixture
async def slow_app(
    settings: Settings, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FastAPI]:
    with monkeypatch.context() as patch:  # only while the routes are built
        patch.setattr(fast_path.FastPathRoute, "get_route_handler", APIRoute.get_route_handler)
        application = create_app(settings, clock)
    async with application.router.lifespan_context(application):
        yield application


def _client(app: FastAPI, key: str | None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://omnistock",
        headers=bearer(key) if key else {},
    )


async def _both(
    app: FastAPI, slow_app: FastAPI, key: str | None, method: str, url: str, **kw: Any
) -> tuple[httpx.Response, httpx.Response]:
    async with _client(app, key) as fast, _client(slow_app, key) as slow:
        return await fast.request(method, url, **kw), await slow.request(method, url, **kw)


@pytest.fixture
async def stocked(app: FastAPI, api_keys: dict[str, str]) -> None:
    async with _client(app, api_keys["admin"]) as admin:
        await seed(admin, {("SKU-1", "dc"): 50, ("SKU-1", "store-a"): 3})


AVAILABILITY_URLS = [
    "/v1/availability/SKU-1?channel=web",
    "/v1/availability/SKU-1?location=dc",
    "/v1/availability/SKU-1",
    "/v1/availability/SKU-404?channel=web",
    "/v1/availability/bad%20sku!?channel=web",
    "/v1/availability/" + "S" * 129,
    "/v1/availability/SKU-1?channel=",
    "/v1/availability/SKU-1?channel=nope",
    "/v1/availability/SKU-1?channel=we%20b",
    "/v1/availability/SKU-1?channel=nope&channel=web",
    "/v1/availability/SKU-1?location=nowhere",
    "/v1/availability/SKU-1?location=" + "L" * 129,
    "/v1/availability/SKU-1?channel=web&unknown=1",
    "/v1/availability/SKU-1?&channel=web&",
    "/v1/availability/SKU-1?channel",
    "/v1/availability/SKU-1?=x&channel=web",
    "/v1/availability/SKU-1?channel=w%65b",
    "/v1/availability/SKU-1?channel=w+eb",
    "/v1/availability/SKU-1?channel=web=x",
    "/v1/availability/SKU-1?location=dc&location=store-a",
]


@pytest.mark.usefixtures("stocked")
@pytest.mark.parametrize("url", AVAILABILITY_URLS)
@pytest.mark.parametrize("caller", ["read", "reserve", "admin", None, "wrong"])
async def test_availability_answers_as_fastapi_does(
    app: FastAPI, slow_app: FastAPI, api_keys: dict[str, str], url: str, caller: str | None
) -> None:
    key = WRONG_KEY if caller == "wrong" else api_keys[caller] if caller else None
    fast, slow = await _both(app, slow_app, key, "GET", url)
    assert (fast.status_code, fast.json(), fast.headers.get("www-authenticate")) == (
        slow.status_code,
        slow.json(),
        slow.headers.get("www-authenticate"),
    )


async def test_a_malformed_authorization_header_answers_as_fastapi_does(
    app: FastAPI, slow_app: FastAPI, api_keys: dict[str, str]
) -> None:
    for header in ("Basic abc", "Bearer", "Bearer  " + api_keys["read"], "bearer x y", ""):
        async with _client(app, None) as fast, _client(slow_app, None) as slow:
            url = "/v1/availability/SKU-1"
            a = await fast.get(url, headers={"Authorization": header})
            b = await slow.get(url, headers={"Authorization": header})
        assert (a.status_code, a.json()) == (b.status_code, b.json()), header


HOLD_BODIES: list[tuple[str, bytes, dict[str, str]]] = [
    ("valid", b'{"channel": "web", "lines": [{"sku": "SKU-1", "quantity": 1}]}', {}),
    ("no content type", b'{"channel": "web", "lines": [{"sku": "SKU-1", "quantity": 1}]}', {}),
    ("text/plain", b'{"lines": [{"sku": "SKU-1", "quantity": 1}]}', {"content-type": "text/plain"}),
    (
        "json; charset",
        b'{"lines": [{"sku": "SKU-1", "quantity": 1}]}',
        {"content-type": "application/json; charset=utf-8"},
    ),
    ("not json", b"{lines:", {}),
    ("empty", b"", {}),
    ("no lines", b'{"channel": "web"}', {}),
    ("extra field", b'{"lines": [{"sku": "SKU-1", "quantity": 1}], "x": 1}', {}),
    ("zero quantity", b'{"lines": [{"sku": "SKU-1", "quantity": 0}]}', {}),
    ("string quantity", b'{"lines": [{"sku": "SKU-1", "quantity": "2"}]}', {}),
    ("float quantity", b'{"lines": [{"sku": "SKU-1", "quantity": 1.0}]}', {}),
    ("NaN", b'{"lines": [{"sku": "SKU-1", "quantity": NaN}]}', {}),
    ("deep", b"[" * 5000 + b"]" * 5000, {}),
    ("bad sku", b'{"lines": [{"sku": "a b", "quantity": 1}]}', {}),
    ("unknown channel", b'{"channel": "nope", "lines": [{"sku": "SKU-1", "quantity": 1}]}', {}),
    ("too many", b'{"lines": [{"sku": "SKU-1", "quantity": 1000000}]}', {}),
]


@pytest.mark.usefixtures("stocked")
@pytest.mark.parametrize(("case", "body", "headers"), HOLD_BODIES, ids=[c[0] for c in HOLD_BODIES])
@pytest.mark.parametrize("caller", ["reserve", "read", None])
async def test_hold_creation_answers_as_fastapi_does(
    app: FastAPI,
    slow_app: FastAPI,
    api_keys: dict[str, str],
    case: str,
    body: bytes,
    headers: dict[str, str],
    caller: str | None,
) -> None:
    if case != "no content type" and "content-type" not in headers:
        headers = {"content-type": "application/json", **headers}
    key = api_keys[caller] if caller else None
    fast, slow = await _both(app, slow_app, key, "POST", "/v1/holds", content=body, headers=headers)
    assert fast.status_code == slow.status_code
    if fast.status_code == 201:  # two holds: the same shape and lines, their own ids
        a, b = fast.json(), slow.json()
        assert a.keys() == b.keys() and a["lines"] == b["lines"] and a["id"] != b["id"]
    else:
        assert fast.json() == slow.json()


async def test_a_valid_request_skips_fastapi_dependency_solving(
    app: FastAPI, api_keys: dict[str, str], monkeypatch: pytest.MonkeyPatch, stocked: None
) -> None:
    calls = 0
    solve = fastapi.routing.solve_dependencies

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return await solve(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counted)
    async with _client(app, api_keys["admin"]) as c:
        assert (await c.get("/v1/availability/SKU-1?channel=web")).status_code == 200
        hold = await c.post("/v1/holds", json={"lines": [{"sku": "SKU-1", "quantity": 1}]})
        assert hold.status_code == 201
        assert calls == 0
        assert (await c.get("/v1/availability/bad%20sku!")).status_code == 422
        assert calls == 1  # the invalid one took FastAPI's path
