"""Every error is an RFC 9457 problem; malformed requests are 422 and change nothing; nothing
is ever a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_problem, hold, snapshot
from tests.conftest import seed

LONG_ID = "x" * 129
MAX_ID = "x" * 128


async def seeded(client: httpx.AsyncClient) -> dict[str, Any]:
    await seed(client, {("sku-1", "dc"): 5})
    return await snapshot(client, ["sku-1"])


async def config(client: httpx.AsyncClient) -> tuple[Any, Any]:
    return (await client.get("/v1/locations")).json(), (await client.get("/v1/channels")).json()


async def assert_refused_unchanged(
    client: httpx.AsyncClient, method: str, path: str, **request: Any
) -> None:
    """The request (`path` may name `{hold}`, a hold of the seeded store) is 422
    `invalid_request` and changes no position, location, channel or hold."""
    await seeded(client)
    h = await hold(client, [{"sku": "sku-1", "quantity": 1}])
    before = await snapshot(client, ["sku-1"])
    cfg = await config(client)
    r = await client.request(method, path.format(hold=h["id"]), **request)
    assert_problem(r, 422, "invalid_request")
    assert await snapshot(client, ["sku-1"]) == before
    assert await config(client) == cfg
    assert (await client.get(f"/v1/holds/{h['id']}")).json() == h


# -- malformed bodies ----------------------------------------------------------------------

MUTATIONS = [
    ("PUT", "/v1/locations/dc"),
    ("PUT", "/v1/channels/web"),
    ("PUT", "/v1/stock/sku-1/dc"),
    ("POST", "/v1/holds"),
    ("POST", "/v1/holds/{hold}/extend"),
    ("POST", "/v1/availability/query"),
]

MALFORMED = {
    "truncated": b'{"on_hand": 5',
    "not_json": b"hello",
    "trailing_comma": b'{"on_hand": 5,}',
    "array": b"[1, 2]",
    "null": b"null",
    "string": b'"x"',
    "empty": b"",
    "bad_utf8": b'{"on_hand": "\xff"}',
    "nan": b'{"on_hand": NaN}',
    "deeply_nested": b"[" * 100_000 + b"]" * 100_000,
}


@pytest.mark.parametrize(("method", "path"), MUTATIONS)
@pytest.mark.parametrize("payload", list(MALFORMED), ids=list(MALFORMED))
async def test_malformed_json_body_is_422_invalid_request_and_changes_nothing(
    client: httpx.AsyncClient, method: str, path: str, payload: str
) -> None:
    await assert_refused_unchanged(
        client,
        method,
        path,
        content=MALFORMED[payload],
        headers={"content-type": "application/json"},
    )


async def test_validation_problem_names_the_offending_field(client: httpx.AsyncClient) -> None:
    await seeded(client)
    r = await client.put("/v1/stock/sku-1/dc", json={"on_hand": "5"})
    body = assert_problem(r, 422, "invalid_request")
    locs = [e["loc"] for e in body["errors"]]
    assert ["body", "on_hand"] in locs


WRONG_TYPES = [
    ("PUT", "/v1/stock/sku-1/dc", {"on_hand": "5"}),
    ("PUT", "/v1/stock/sku-1/dc", {"on_hand": 5.0}),
    ("PUT", "/v1/stock/sku-1/dc", {"on_hand": 5.5}),
    ("PUT", "/v1/stock/sku-1/dc", {"on_hand": True}),
    ("PUT", "/v1/stock/sku-1/dc", {"on_hand": None}),
    ("PUT", "/v1/stock/sku-1/dc", {"on_hand": 10**13}),
    ("PUT", "/v1/stock/sku-1/dc", {"on_hand": 5, "safety_stock": "1"}),
    ("PUT", "/v1/locations/dc", {"priority": "1"}),
    ("PUT", "/v1/locations/dc", {"ship": "yes"}),
    ("PUT", "/v1/locations/dc", {"ship": 1}),
    ("PUT", "/v1/channels/web", {"locations": "dc"}),
    ("PUT", "/v1/channels/web", {"locations": ["dc"], "low_stock_threshold": "5"}),
    ("POST", "/v1/holds", {"channel": "web", "lines": [{"sku": "sku-1", "quantity": "5"}]}),
    ("POST", "/v1/holds", {"channel": "web", "lines": [{"sku": "sku-1", "quantity": 1.0}]}),
    ("POST", "/v1/holds", {"channel": "web", "lines": [{"sku": 1, "quantity": 1}]}),
    ("POST", "/v1/holds", {"channel": "web", "lines": {"sku": "sku-1", "quantity": 1}}),
    ("POST", "/v1/holds", {"channel": "web", "ttl_seconds": "60", "lines": []}),
    ("POST", "/v1/holds", {"channel": 5, "lines": [{"sku": "sku-1", "quantity": 1}]}),
    (
        "POST",
        "/v1/holds",
        {"channel": "web", "allow_split": "true", "lines": [{"sku": "sku-1", "quantity": 1}]},
    ),
    ("POST", "/v1/holds/{hold}/extend", {"ttl_seconds": "60"}),
    ("POST", "/v1/availability/query", {"skus": "sku-1"}),
    ("POST", "/v1/availability/query", {"skus": [1]}),
]


@pytest.mark.parametrize(("method", "path", "body"), WRONG_TYPES)
async def test_wrong_types_are_422_invalid_request_and_change_nothing(
    client: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    await assert_refused_unchanged(client, method, path, json=body)


UNKNOWN_FIELDS = [
    ("PUT", "/v1/stock/sku-1/dc", {"on_hand": 5, "onhand": 6}),
    ("PUT", "/v1/locations/dc", {"priority": 1, "prio": 2}),
    ("PUT", "/v1/channels/web", {"locations": ["dc"], "threshold": 2}),
    (
        "POST",
        "/v1/holds",
        {"channel": "web", "ttl": 60, "lines": [{"sku": "sku-1", "quantity": 1}]},
    ),
    ("POST", "/v1/holds", {"channel": "web", "lines": [{"sku": "sku-1", "qty": 1}]}),
    (
        "POST",
        "/v1/holds",
        {"channel": "web", "lines": [{"sku": "sku-1", "quantity": 1, "store": "dc"}]},
    ),
    ("POST", "/v1/holds/{hold}/extend", {"ttl_seconds": 60, "until": 1}),
    ("POST", "/v1/availability/query", {"skus": ["sku-1"], "chanel": "web"}),
]


@pytest.mark.parametrize(("method", "path", "body"), UNKNOWN_FIELDS)
async def test_unknown_fields_are_422_invalid_request_and_change_nothing(
    client: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    await assert_refused_unchanged(client, method, path, json=body)


BAD_IDS = ["sku 1", "sku/1", "sku%1", "ökö", "a;b", "<x>", LONG_ID, "sku-1\n"]


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_bad_identifier_in_a_hold_line_is_422_and_reserves_nothing(
    client: httpx.AsyncClient, bad: str
) -> None:
    before = await seeded(client)
    for line in ({"sku": bad, "quantity": 1}, {"sku": "sku-1", "quantity": 1, "location": bad}):
        r = await client.post(
            "/v1/holds", json={"channel": "web", "lines": [{"sku": "sku-1", "quantity": 1}, line]}
        )
        assert_problem(r, 422, "invalid_request")
    r = await client.post(
        "/v1/holds", json={"channel": bad, "lines": [{"sku": "sku-1", "quantity": 1}]}
    )
    assert_problem(r, 422, "invalid_request")
    assert await snapshot(client, ["sku-1"]) == before


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_bad_identifier_in_channel_locations_or_batch_skus_is_422(
    client: httpx.AsyncClient, bad: str
) -> None:
    await seeded(client)
    cfg = await config(client)
    r = await client.put("/v1/channels/web", json={"locations": ["dc", bad]})
    assert_problem(r, 422, "invalid_request")
    r = await client.post("/v1/availability/query", json={"skus": ["sku-1", bad]})
    assert_problem(r, 422, "invalid_request")
    r = await client.post("/v1/availability/query", json={"skus": ["sku-1"], "channel": bad})
    assert_problem(r, 422, "invalid_request")
    assert await config(client) == cfg


@pytest.mark.parametrize("bad", ["sku%201", "%C3%B6", "a;b", "%3Cx%3E", LONG_ID, "a%0Ab"])
async def test_bad_identifier_in_the_path_is_422_and_changes_nothing(
    client: httpx.AsyncClient, bad: str
) -> None:
    before = await seeded(client)
    cfg = await config(client)
    assert_problem(
        await client.put(f"/v1/stock/{bad}/dc", json={"on_hand": 1}), 422, "invalid_request"
    )
    assert_problem(
        await client.put(f"/v1/stock/sku-1/{bad}", json={"on_hand": 1}), 422, "invalid_request"
    )
    assert_problem(await client.put(f"/v1/locations/{bad}", json={}), 422, "invalid_request")
    assert_problem(
        await client.put(f"/v1/channels/{bad}", json={"locations": ["dc"]}), 422, "invalid_request"
    )
    assert_problem(await client.get(f"/v1/stock/{bad}"), 422, "invalid_request")
    assert_problem(await client.get(f"/v1/availability/{bad}"), 422, "invalid_request")
    assert await snapshot(client, ["sku-1"]) == before
    assert await config(client) == cfg


@pytest.mark.parametrize("bad", ["sku 1", "ö", LONG_ID])
async def test_bad_identifier_in_the_query_string_is_422(
    client: httpx.AsyncClient, bad: str
) -> None:
    await seeded(client)
    for params in ({"channel": bad}, {"location": bad}):
        r = await client.get("/v1/availability/sku-1", params=params)
        assert_problem(r, 422, "invalid_request")


async def test_identifier_of_exactly_128_characters_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    await seed(client)
    assert (await client.put(f"/v1/locations/{MAX_ID}", json={})).status_code == 200
    r = await client.put(f"/v1/stock/{MAX_ID}/{MAX_ID}", json={"on_hand": 3})
    assert r.status_code == 200, r.text
    h = await hold(client, [{"sku": MAX_ID, "quantity": 1, "location": MAX_ID}], channel=None)
    assert h["lines"] == [{"sku": MAX_ID, "location": MAX_ID, "quantity": 1}]


async def test_identifier_with_every_allowed_character_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    await seed(client)
    sku = "AZaz09._:-"
    assert (await client.put(f"/v1/stock/{sku}/dc", json={"on_hand": 2})).status_code == 200
    assert (await client.get(f"/v1/availability/{sku}")).json()["available"] == 2


async def test_hold_with_empty_lines_is_422_invalid_request(client: httpx.AsyncClient) -> None:
    before = await seeded(client)
    r = await client.post("/v1/holds", json={"channel": "web", "lines": []})
    assert_problem(r, 422, "invalid_request")
    assert await snapshot(client, ["sku-1"]) == before


async def test_hold_without_lines_is_422_invalid_request(client: httpx.AsyncClient) -> None:
    await seeded(client)
    assert_problem(await client.post("/v1/holds", json={"channel": "web"}), 422, "invalid_request")


@pytest.mark.parametrize("quantity", [0, -1, -100])
async def test_hold_line_quantity_zero_or_negative_is_422_and_reserves_nothing(
    client: httpx.AsyncClient, quantity: int
) -> None:
    before = await seeded(client)
    r = await client.post(
        "/v1/holds",
        json={
            "channel": "web",
            "lines": [{"sku": "sku-1", "quantity": 1}, {"sku": "sku-1", "quantity": quantity}],
        },
    )
    assert_problem(r, 422, "invalid_request")
    assert await snapshot(client, ["sku-1"]) == before


async def test_hold_line_without_quantity_is_422(client: httpx.AsyncClient) -> None:
    await seeded(client)
    r = await client.post("/v1/holds", json={"channel": "web", "lines": [{"sku": "sku-1"}]})
    assert_problem(r, 422, "invalid_request")


@pytest.mark.parametrize("extra", [100, 1000])
async def test_hold_with_more_lines_than_allowed_is_422_and_reserves_nothing(
    client: httpx.AsyncClient, extra: int
) -> None:
    """At most `max_lines_per_hold` (100) lines; 1001 is over the schema's own limit too."""
    await seed(client, {("sku-1", "dc"): 5, **{(f"other-{i}", "dc"): 5 for i in range(extra)}})
    before = await snapshot(client, ["sku-1", "other-0"])
    lines = [{"sku": "sku-1", "quantity": 1}] + [
        {"sku": f"other-{i}", "quantity": 1} for i in range(extra)
    ]
    r = await client.post("/v1/holds", json={"channel": "web", "lines": lines})
    assert_problem(r, 422, "invalid_request")
    assert await snapshot(client, ["sku-1", "other-0"]) == before


async def test_hold_reference_longer_than_256_characters_is_422(
    client: httpx.AsyncClient,
) -> None:
    before = await seeded(client)
    r = await client.post(
        "/v1/holds",
        json={"channel": "web", "reference": "r" * 257, "lines": [{"sku": "sku-1", "quantity": 1}]},
    )
    assert_problem(r, 422, "invalid_request")
    assert await snapshot(client, ["sku-1"]) == before


# -- routing -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/nope", "/nope", "/v1/holds/x/explode", "/v2/holds"])
async def test_unknown_route_is_404_problem(client: httpx.AsyncClient, path: str) -> None:
    assert_problem(await client.get(path), 404, "not_found")


async def test_wrong_method_is_405_problem(client: httpx.AsyncClient) -> None:
    r = await client.delete("/v1/holds")
    assert r.status_code == 405
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == 405
    assert {"type", "title", "detail", "code"} <= body.keys()


# -- no 500s -------------------------------------------------------------------------------

ODD_BODIES: list[Any] = [
    {},
    [],
    0,
    "",
    {"lines": [None]},
    {"lines": [[]]},
    {"lines": [{}]},
    {"lines": [{"sku": "", "quantity": 1}]},
    {"lines": [{"sku": "a", "quantity": 10**40}]},
    {"lines": [{"sku": "a", "quantity": -(10**40)}]},
    {"on_hand": 10**40},
    {"on_hand": -(10**40)},
    {"on_hand": 1e308},
    {"locations": [None]},
    {"locations": [{"id": "dc"}]},
    {"skus": [None]},
    {"skus": ["a"], "locations": []},
    {"ttl_seconds": 10**40},
    {"priority": -1},
    {"priority": 10**40},
    {"name": "n" * 10_000},
    {"type": None},
    {"__proto__": {"x": 1}},
]

ALL_MUTATIONS = [
    ("PUT", "/v1/locations/dc"),
    ("PUT", "/v1/channels/web"),
    ("PUT", "/v1/stock/sku-1/dc"),
    ("POST", "/v1/holds"),
    ("POST", "/v1/holds/{hold}/commit"),
    ("POST", "/v1/holds/{hold}/fulfil"),
    ("POST", "/v1/holds/{hold}/release"),
    ("POST", "/v1/holds/{hold}/extend"),
    ("POST", "/v1/availability/query"),
]


@pytest.mark.parametrize(("method", "path"), ALL_MUTATIONS)
async def test_odd_bodies_never_yield_a_500(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    await seeded(client)
    h = await hold(client, [{"sku": "sku-1", "quantity": 1}])
    for body in ODD_BODIES:
        r = await client.request(method, path.format(hold=h["id"]), json=body)
        assert r.status_code < 500, (body, r.status_code, r.text)
        if r.status_code >= 400:
            assert r.headers["content-type"].startswith("application/problem+json"), body
            assert {"type", "title", "status", "detail", "code"} <= r.json().keys()


async def test_odd_paths_never_yield_a_500(client: httpx.AsyncClient) -> None:
    await seeded(client)
    for path in [
        "/v1/holds/%00",
        "/v1/holds/" + "h" * 5000,
        "/v1/holds/..%2F..%2Fetc",
        "/v1/stock/%ff",
        "/v1/availability/sku-1?channel=",
        "/v1/availability/sku-1?location=",
        "/v1/availability/sku-1?channel=web&channel=web",
        "/v1/stock/" + "s" * 5000,
        "/v1/holds/h%20x",
    ]:
        r = await client.get(path)
        assert r.status_code < 500, (path, r.status_code, r.text)
        assert r.status_code == 200 or r.headers["content-type"].startswith(
            "application/problem+json"
        ), path
