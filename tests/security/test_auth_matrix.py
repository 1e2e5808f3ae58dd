"""The auth matrix: every endpoint x every scope x {no key, wrong key, right key}.

A caller without a key, or with one the service does not know, gets 401 `unauthorized` with
a `WWW-Authenticate: Bearer` challenge; a known key without the endpoint's scope gets 403
`forbidden`; a key with it gets exactly the endpoint's own answer (2xx, or its domain 4xx).
Refused requests change nothing in the store, byte for byte. Holds belong to the key that
made them: the `{hold}` of a row is the caller's own when it may create holds (`reserve`),
else admin's, so a `read` key's GET of it is 404 `hold_not_found` (test_hold_ownership.py
covers ownership itself).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from starlette.routing import BaseRoute, Route

from tests.api.helpers import assert_problem
from tests.conftest import seed
from tests.security.conftest import SCOPES, WRONG_KEY, bearer

READ = frozenset({"read"})
RESERVE = frozenset({"reserve"})
ADMIN = frozenset[str]()  # admin only (admin may call everything)
POS = frozenset({"pos:store-a", "pos:store-b"})
OPEN = None
CALLERS = ("no key", "wrong key", *SCOPES)
UNKNOWN_HOLD = "haaaaaaaaaaaaaaaaaaaa-00"


@dataclass(frozen=True)
class Endpoint:
    route: str  # "METHOD /template", as the app registers it
    path: str  # concrete; {hold}: an active hold made for the test, {committed}: a committed one
    allowed: frozenset[str] | None  # scopes besides admin; None: open to anyone
    status: int  # the answer to an allowed caller
    code: str | None = None  # the problem code of a domain 4xx answer
    json: Any = None
    sse: bool = False
    # POST /v1/stock/events: each event's outcome by caller (a POS key's other location).
    outcomes: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.route} -> {self.status}"


_LINES = {"channel": "web", "lines": [{"sku": "sku-1", "quantity": 1}]}
_SALE_AT_A = {
    "events": [
        {"id": "till-1:1", "type": "sale", "sku": "sku-1", "location": "store-a", "quantity": 1}
    ]
}

_SUPPLY = {
    "type": "purchase_order",
    "quantity": 5,
    "eta": (datetime.now(UTC) + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
}

ENDPOINTS = [
    Endpoint("PUT /v1/locations/{location}", "/v1/locations/store-c", ADMIN, 200, json={}),
    Endpoint("GET /v1/locations", "/v1/locations", READ, 200),
    Endpoint(
        "PUT /v1/channels/{channel}", "/v1/channels/app", ADMIN, 200, json={"locations": ["dc"]}
    ),
    Endpoint("GET /v1/channels", "/v1/channels", READ, 200),
    Endpoint(
        "PUT /v1/stock/{sku}/{location}", "/v1/stock/sku-1/dc", ADMIN, 200, json={"on_hand": 9}
    ),
    Endpoint("GET /v1/stock/{sku}", "/v1/stock/sku-1", READ, 200),
    Endpoint("GET /v1/availability/{sku}", "/v1/availability/sku-1?channel=web", READ, 200),
    Endpoint(
        "POST /v1/availability/query",
        "/v1/availability/query",
        READ,
        200,
        json={"skus": ["sku-1"], "channel": "web"},
    ),
    Endpoint("POST /v1/holds", "/v1/holds", RESERVE, 201, json=_LINES),
    Endpoint(
        "POST /v1/holds",
        "/v1/holds",
        RESERVE,
        409,
        "insufficient_stock",
        json={"lines": [{"sku": "sku-1", "quantity": 99}]},
    ),
    Endpoint("GET /v1/holds/{hold_id}", "/v1/holds/{hold}", READ | RESERVE, 200),
    Endpoint(
        "GET /v1/holds/{hold_id}",
        f"/v1/holds/{UNKNOWN_HOLD}",
        READ | RESERVE,
        404,
        "hold_not_found",
    ),
    Endpoint("GET /v1/holds", "/v1/holds?limit=5", READ | RESERVE, 200),
    Endpoint(
        "PATCH /v1/holds/{hold_id}",
        "/v1/holds/{hold}",
        RESERVE,
        200,
        json={"metadata": {"order_id": "A-1"}},
    ),
    Endpoint("POST /v1/holds/{hold_id}/commit", "/v1/holds/{hold}/commit", RESERVE, 200),
    Endpoint("POST /v1/holds/{hold_id}/fulfil", "/v1/holds/{committed}/fulfil", RESERVE, 200),
    Endpoint("POST /v1/holds/{hold_id}/release", "/v1/holds/{hold}/release", RESERVE, 200),
    Endpoint(
        "POST /v1/holds/{hold_id}/extend",
        "/v1/holds/{hold}/extend",
        RESERVE,
        200,
        json={"ttl_seconds": 60},
    ),
    Endpoint(
        "POST /v1/holds/{hold_id}/commit",
        f"/v1/holds/{UNKNOWN_HOLD}/commit",
        RESERVE,
        404,
        "hold_not_found",
    ),
    Endpoint(
        "POST /v1/stock/events",
        "/v1/stock/events",
        POS,
        200,
        json=_SALE_AT_A,
        outcomes={"pos:store-a": "applied", "pos:store-b": "rejected", "admin": "applied"},
    ),
    Endpoint("GET /v1/events/log", "/v1/events/log", READ, 200),
    Endpoint(
        "PUT /v1/supply/{sku}/{location}/{supply_id}",
        "/v1/supply/sku-1/dc/po-1",
        ADMIN,
        200,
        json=_SUPPLY,
    ),
    Endpoint(
        "DELETE /v1/supply/{sku}/{location}/{supply_id}",
        "/v1/supply/sku-1/dc/po-9",
        ADMIN,
        404,
        "supply_not_found",
    ),
    Endpoint(
        "POST /v1/supply/batch",
        "/v1/supply/batch",
        ADMIN,
        200,
        json={"lines": [{"sku": "sku-1", "location": "dc", "supply_id": "po-2", **_SUPPLY}]},
    ),
    Endpoint("GET /v1/supply/{sku}", "/v1/supply/sku-1", READ, 200),
    Endpoint(
        "GET /v1/availability/{sku}/timeline",
        "/v1/availability/sku-1/timeline?channel=web",
        READ,
        200,
    ),
    Endpoint("POST /v1/webhooks", "/v1/webhooks", ADMIN, 201, json={"url": "http://127.0.0.1:9/"}),
    Endpoint("GET /v1/webhooks", "/v1/webhooks", ADMIN, 200),
    Endpoint(
        "GET /v1/webhooks/{sub_id}",
        "/v1/webhooks/wh_0000000000000000",
        ADMIN,
        404,
        "webhook_not_found",
    ),
    Endpoint(
        "PATCH /v1/webhooks/{sub_id}",
        "/v1/webhooks/wh_0000000000000000",
        ADMIN,
        404,
        "webhook_not_found",
        json={},
    ),
    Endpoint(
        "DELETE /v1/webhooks/{sub_id}",
        "/v1/webhooks/wh_0000000000000000",
        ADMIN,
        404,
        "webhook_not_found",
    ),
    Endpoint(
        "GET /v1/webhooks/{sub_id}/attempts",
        "/v1/webhooks/wh_0000000000000000/attempts",
        ADMIN,
        404,
        "webhook_not_found",
    ),
    Endpoint(
        "POST /v1/webhooks/{sub_id}/redeliver",
        "/v1/webhooks/wh_0000000000000000/redeliver?from=1-0-000",
        ADMIN,
        404,
        "webhook_not_found",
    ),
    Endpoint(
        "GET /v1/availability/{sku}/nearby",
        "/v1/availability/sku-1/nearby?lat=1&lon=2&radius_km=5",
        READ,
        200,
    ),
    Endpoint(
        "POST /v1/availability/nearby",
        "/v1/availability/nearby",
        READ,
        200,
        json={"lines": [{"sku": "sku-1", "quantity": 1}], "lat": 1, "lon": 2, "radius_km": 5},
    ),
    Endpoint(
        "PUT /v1/kits/{sku}",
        "/v1/kits/kit-1",
        ADMIN,
        200,
        json={"components": [{"sku": "sku-1", "quantity": 1}]},
    ),
    Endpoint("GET /v1/kits", "/v1/kits", READ, 200),
    Endpoint("GET /v1/kits/{sku}", "/v1/kits/kit-0", READ, 404, "kit_not_found"),
    Endpoint("DELETE /v1/kits/{sku}", "/v1/kits/kit-0", ADMIN, 404, "kit_not_found"),
    Endpoint("GET /v1/events", "/v1/events", READ, 200, sse=True),
    Endpoint("GET /metrics", "/metrics", READ, 200),
    Endpoint("GET /healthz", "/healthz", OPEN, 200),
    Endpoint("GET /readyz", "/readyz", OPEN, 200),
    Endpoint("GET /openapi.json", "/openapi.json", OPEN, 200),
    Endpoint("GET /docs", "/docs", OPEN, 200),
    Endpoint("GET /redoc", "/redoc", OPEN, 200),
]


async def store_state(redis: Redis) -> dict[str, bytes]:
    """Every key and its serialised value: equal before and after means nothing changed."""
    state: dict[str, Any] = {}
    async for key in redis.scan_iter(count=1000):
        state[key] = await redis.dump(key)
    return state


async def sse_response(app: FastAPI, path: str, headers: dict[str, str]) -> tuple[int, str]:
    """Status and content type of a Server-Sent Events request, then hang up (httpx's ASGI
    transport waits for the end of a response, and an event stream has none)."""
    started = asyncio.Event()
    head: dict[str, Any] = {}
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await started.wait()
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            head.update(message)
            started.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1),
        "server": ("omnistock", 80),
    }
    await asyncio.wait_for(app(scope, receive, send), timeout=10)
    content_type = dict(head["headers"]).get(b"content-type", b"").decode()
    return int(head["status"]), content_type


def all_routes(routes: list[BaseRoute]) -> list[Route]:
    """Every route, looking into included routers (FastAPI >= 0.16x nests them)."""
    found: list[Route] = []
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            found += all_routes(included.routes)
        elif isinstance(route, Route):
            found.append(route)
    return found


def headers_of(caller: str, api_keys: dict[str, str]) -> dict[str, str]:
    if caller == "no key":
        return {}
    if caller == "wrong key":
        return bearer(WRONG_KEY)
    return bearer(api_keys[caller])


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
async def test_auth_matrix(
    endpoint: Endpoint,
    caller: str,
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    redis: Redis,
    api_keys: dict[str, str],
) -> None:
    await seed(admin, {("sku-1", "dc"): 5, ("sku-1", "store-a"): 3})
    path = endpoint.path
    headers = headers_of(caller, api_keys)
    if "{hold}" in path or "{committed}" in path:
        owner = headers if caller == "reserve" else {}  # admin's otherwise
        created = await admin.post("/v1/holds", json=_LINES, headers=owner)
        assert created.status_code == 201, created.text
        hold_id = created.json()["id"]
        if "{committed}" in path:
            committed = await admin.post(f"/v1/holds/{hold_id}/commit", headers=owner)
            assert committed.status_code == 200
        path = path.replace("{hold}", hold_id).replace("{committed}", hold_id)
    before = await store_state(redis)

    if endpoint.sse:
        status, content_type = await sse_response(app, path, headers)
        assert status == (
            200
            if caller in (endpoint.allowed or ()) or caller == "admin"
            else 401
            if " " in caller
            else 403
        )
        if status == 200:
            assert content_type.startswith("text/event-stream")
        return
    method, _ = endpoint.route.split(" ")
    r = await client.request(method, path, json=endpoint.json, headers=headers)

    if endpoint.allowed is None:
        assert r.status_code == 200, r.text
        assert await store_state(redis) == before
    elif caller in ("no key", "wrong key"):
        assert_problem(r, 401, "unauthorized")
        challenge = r.headers["www-authenticate"]
        assert challenge.startswith("Bearer ")
        assert ('error="invalid_token"' in challenge) == (caller == "wrong key")
        assert await store_state(redis) == before
    elif caller == "read" and caller in endpoint.allowed and "{hold}" in endpoint.path:
        assert_problem(r, 404, "hold_not_found")  # a read key owns no hold
        assert await store_state(redis) == before
    elif caller in endpoint.allowed or caller == "admin":
        if endpoint.code:
            assert_problem(r, endpoint.status, endpoint.code)
        else:
            assert r.status_code == endpoint.status, r.text
        if endpoint.outcomes:
            (result,) = r.json()["results"]
            assert result["status"] == endpoint.outcomes[caller], result
    else:
        body = assert_problem(r, 403, "forbidden")
        assert "admin" in body["required_scopes"]
        assert caller not in body["required_scopes"]
        assert await store_state(redis) == before


def test_the_matrix_covers_every_route(app: FastAPI) -> None:
    """A route added later without a row here (and so maybe without a scope) fails this."""
    routes = {
        f"{method} {route.path}"
        for route in all_routes(app.routes)
        for method in (route.methods or ())
        if method != "HEAD"
    }
    routes.discard("GET /docs/oauth2-redirect")  # a static helper page of /docs
    assert routes == {e.route for e in ENDPOINTS}


async def test_invalid_body_without_key_is_401_not_422(client: httpx.AsyncClient) -> None:
    """The key is checked before the request's fields: no key, no validation feedback."""
    r = await client.post("/v1/holds", json={"lines": "not a list", "bogus": 1})
    assert_problem(r, 401, "unauthorized")


async def test_invalid_body_with_a_key_lacking_the_scope_is_403_not_422(
    client: httpx.AsyncClient, api_keys: dict[str, str]
) -> None:
    r = await client.post("/v1/holds", json={"lines": "x"}, headers=bearer(api_keys["read"]))
    assert_problem(r, 403, "forbidden")


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer ",
        "bearer",
        "Token osk_x",
        "osk_x",
        "Bearer " + "k" * 5000,
    ],
)
async def test_malformed_authorization_header_is_401(
    client: httpx.AsyncClient, authorization: str
) -> None:
    r = await client.get("/v1/locations", headers={"Authorization": authorization})
    assert_problem(r, 401, "unauthorized")
    assert r.headers["www-authenticate"].startswith("Bearer")


async def test_scheme_name_is_case_insensitive(
    client: httpx.AsyncClient, api_keys: dict[str, str]
) -> None:
    """RFC 7235: the auth scheme is case-insensitive; the key itself is not."""
    key = api_keys["read"]
    assert (
        await client.get("/v1/locations", headers={"Authorization": f"bearer {key}"})
    ).status_code == 200
    r = await client.get("/v1/locations", headers={"Authorization": f"Bearer {key.upper()}"})
    assert_problem(r, 401, "unauthorized")


async def test_a_key_with_several_scopes_may_do_what_each_allows(
    store_url: str, tmp_path: Path
) -> None:
    from app.api.main import create_app
    from app.credentials import append
    from tests.conftest import make_settings

    path = tmp_path / "keys.json"
    key = append(path, "checkout", ["read", "reserve"])
    checkout = create_app(make_settings(store_url, api_keys_file=path))
    async with checkout.router.lifespan_context(checkout):
        transport = httpx.ASGITransport(app=checkout)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://omnistock", headers=bearer(key)
        ) as c:
            assert (await c.get("/v1/availability/sku-1")).status_code == 200
            assert_problem(
                await c.post("/v1/holds", json={"lines": [{"sku": "sku-1", "quantity": 1}]}),
                409,
                "insufficient_stock",
            )
            assert_problem(await c.put("/v1/stock/sku-1/dc", json={"on_hand": 1}), 403, "forbidden")


@pytest.mark.parametrize(
    ("method", "path", "json"),
    [
        ("GET", "/v1/availability/sku-1", None),  # the fast path
        ("POST", "/v1/holds", {"lines": [{"sku": "sku-1", "quantity": 1}]}),  # the fast path
        ("GET", "/v1/locations", None),  # FastAPI's path only
    ],
)
@pytest.mark.parametrize("second", ["read", "admin", "wrong key"])
async def test_two_authorization_headers_are_refused(
    client: httpx.AsyncClient,
    api_keys: dict[str, str],
    method: str,
    path: str,
    json: Any,
    second: str,
) -> None:
    """The first used to win silently, whatever the second said (a proxy may go by it)."""
    other = WRONG_KEY if second == "wrong key" else api_keys[second]
    headers = [
        ("Authorization", f"Bearer {api_keys['admin']}"),
        ("Authorization", f"Bearer {other}"),
    ]
    r = await client.request(method, path, json=json, headers=headers)
    body = assert_problem(r, 401, "unauthorized")
    assert "exactly one Authorization header" in body["detail"]
    assert 'error="invalid_request"' in r.headers["www-authenticate"]


async def test_the_403_of_an_admin_route_names_admin_once(
    client: httpx.AsyncClient, api_keys: dict[str, str]
) -> None:
    """It said "one of admin, admin"."""
    r = await client.put("/v1/locations/x", json={}, headers=bearer(api_keys["read"]))
    body = assert_problem(r, 403, "forbidden")
    assert body["detail"] == "this API key lacks the scope for this operation: one of admin"
    assert body["required_scopes"] == ["admin"]
