"""No client value becomes a key name that escapes its namespace.

Every identifier that reaches a key name (sku, location, channel, hold id, event id) is 1-128
characters of `A-Z a-z 0-9 . _ : -`, so it can hold no `{`/`}` (which would move the key's
hash tag, i.e. its partition and cluster slot), no `*` or space. Values that could are 422 (or,
inside a batch of stock events, `rejected`) on every endpoint, and the store is untouched.
Free-text values (Idempotency-Key, a hold's reference) never become key names at all.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from redis.asyncio import Redis

from tests.api.helpers import assert_problem
from tests.conftest import seed
from tests.security.test_auth_matrix import store_state

HOSTILE = ["a{b}", "{cfg}", "{000}x", "a*", "*", "a b", " ", "a}", "os:{idem:0000}:x", "x" * 129]

# The whole key schema (app/keys.py): a hash tag, then only identifier characters.
KEY_SHAPE = re.compile(r"^os:\{(\d{3}|cfg|idem:[0-9a-f]{4})\}:[A-Za-z0-9._:|-]+$")


def requests_with(v: str) -> list[tuple[str, str, Any]]:
    """(method, url, json) for every place a client puts an identifier."""
    p = quote(v, safe="")
    q = {"channel": v}
    return [
        ("PUT", f"/v1/locations/{p}", {}),
        ("PUT", f"/v1/channels/{p}", {"locations": ["dc"]}),
        ("PUT", "/v1/channels/web", {"locations": ["dc", v]}),
        ("PUT", f"/v1/stock/{p}/dc", {"on_hand": 1}),
        ("PUT", f"/v1/stock/sku-1/{p}", {"on_hand": 1}),
        ("GET", f"/v1/stock/{p}", None),
        ("GET", f"/v1/availability/{p}", None),
        ("GET", f"/v1/availability/sku-1?channel={p}", None),
        ("GET", f"/v1/availability/sku-1?location={p}", None),
        ("POST", "/v1/availability/query", {"skus": ["sku-1", v]}),
        ("POST", "/v1/availability/query", {"skus": ["sku-1"], **q}),
        ("POST", "/v1/availability/query", {"skus": ["sku-1"], "locations": [v]}),
        ("POST", "/v1/holds", {**q, "lines": [{"sku": "sku-1", "quantity": 1}]}),
        ("POST", "/v1/holds", {"lines": [{"sku": v, "quantity": 1}]}),
        ("POST", "/v1/holds", {"lines": [{"sku": "sku-1", "quantity": 1, "location": v}]}),
        ("GET", f"/v1/holds/{p}", None),
        ("POST", f"/v1/holds/{p}/commit", None),
        ("POST", f"/v1/holds/{p}/fulfil", None),
        ("POST", f"/v1/holds/{p}/release", None),
        ("POST", f"/v1/holds/{p}/extend", {"ttl_seconds": 60}),
        ("GET", f"/v1/events/log?sku={p}", None),
        ("GET", f"/v1/events/log?location={p}", None),
        ("GET", f"/v1/events/log?channel={p}", None),
        ("GET", f"/v1/events?sku={p}", None),
        ("GET", f"/v1/events?location={p}", None),
    ]


def stock_events_with(v: str) -> list[dict[str, Any]]:
    event = {"id": "e-1", "type": "receipt", "sku": "sku-1", "location": "dc", "quantity": 1}
    return [{**event, "id": v}, {**event, "sku": v}, {**event, "location": v}]


@pytest.mark.parametrize("value", HOSTILE)
async def test_identifier_that_could_leave_its_namespace_is_422_everywhere(
    admin: httpx.AsyncClient, redis: Redis, value: str
) -> None:
    await seed(admin, {("sku-1", "dc"): 5})
    before = await store_state(redis)
    count = await redis.dbsize()
    for method, url, body in requests_with(value):
        r = await admin.request(method, url, json=body)
        assert_problem(r, 422, "invalid_request")
    r = await admin.post("/v1/stock/events", json={"events": stock_events_with(value)})
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()["results"]] == ["rejected"] * 3
    assert await redis.dbsize() == count
    assert await store_state(redis) == before


async def test_idempotency_key_longer_than_255_characters_is_422(
    admin: httpx.AsyncClient, redis: Redis
) -> None:
    await seed(admin, {("sku-1", "dc"): 5})
    count = await redis.dbsize()
    body = {"channel": "web", "lines": [{"sku": "sku-1", "quantity": 1}]}
    r = await admin.post("/v1/holds", json=body, headers={"Idempotency-Key": "k" * 256})
    assert_problem(r, 422, "invalid_request")
    assert await redis.dbsize() == count
    ok = await admin.post("/v1/holds", json=body, headers={"Idempotency-Key": "k" * 255})
    assert ok.status_code == 201, ok.text


async def test_free_text_values_never_shape_a_key_name(
    admin: httpx.AsyncClient, redis: Redis
) -> None:
    """Braces, stars and spaces in an Idempotency-Key or a reference end up hashed or in a
    value: afterwards every key in the store still has the schema's shape."""
    await seed(admin, {("sku-1", "dc"): 5})
    r = await admin.post(
        "/v1/holds",
        json={
            "channel": "web",
            "reference": "{cfg} * }{",
            "lines": [{"sku": "sku-1", "quantity": 1}],
        },
        headers={"Idempotency-Key": "os:{cfg}:*{000}"},
    )
    assert r.status_code == 201, r.text
    await admin.post(f"/v1/holds/{r.json()['id']}/commit", headers={"Idempotency-Key": "{x}*"})
    names = [k async for k in redis.scan_iter(count=1000)]
    assert names and all(KEY_SHAPE.match(k) for k in names), [
        k for k in names if not KEY_SHAPE.match(k)
    ]
