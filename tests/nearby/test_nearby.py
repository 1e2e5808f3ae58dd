"""GET /v1/availability/{sku}/nearby and POST /v1/availability/nearby."""

from __future__ import annotations

import httpx
import pytest

from tests.api.helpers import assert_problem
from tests.nearby.helpers import HERE, STORES, haversine_km, seed_stores

PARAMS = {"lat": HERE[0], "lon": HERE[1], "radius_km": 25}


async def test_nearby_lists_stores_in_range_with_stock_nearest_first(
    client: httpx.AsyncClient,
) -> None:
    stock = {
        ("S", "store-1"): 0,
        ("S", "store-2"): 3,
        ("S", "store-3"): 1,
        ("S", "store-7"): 2,
        ("S", "lyon"): 9,
        ("S", "dc"): 50,
    }
    await seed_stores(client, stock)
    r = await client.get("/v1/availability/S/nearby", params=PARAMS)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["sku"] == "S"
    got = [(x["location"], x["available"]) for x in body["locations"]]
    assert got == [("store-2", 3), ("store-7", 2), ("store-3", 1)]  # store-1 sold out, lyon far
    for x in body["locations"]:
        assert x["distance_km"] == pytest.approx(
            haversine_km(HERE, STORES[x["location"]]), abs=1e-3
        )
        assert x["name"] == x["location"].title()


async def test_nearby_honours_quantity_limit_and_channel(client: httpx.AsyncClient) -> None:
    stock = {("S", "store-2"): 3, ("S", "store-3"): 1, ("S", "store-7"): 2}
    await seed_stores(client, stock)
    r = await client.get("/v1/availability/S/nearby", params={**PARAMS, "quantity": 2})
    assert [x["location"] for x in r.json()["locations"]] == ["store-2", "store-7"]
    r = await client.get("/v1/availability/S/nearby", params={**PARAMS, "limit": 1})
    assert [x["location"] for x in r.json()["locations"]] == ["store-2"]
    await client.put("/v1/channels/web", json={"locations": ["store-3", "dc"]})
    r = await client.get("/v1/availability/S/nearby", params={**PARAMS, "channel": "web"})
    assert [x["location"] for x in r.json()["locations"]] == ["store-3"]


async def test_nearby_counts_held_units(client: httpx.AsyncClient) -> None:
    await seed_stores(client, {("S", "store-2"): 1, ("S", "store-7"): 1})
    r = await client.post(
        "/v1/holds", json={"lines": [{"sku": "S", "quantity": 1, "location": "store-2"}]}
    )
    assert r.status_code == 201, r.text
    r = await client.get("/v1/availability/S/nearby", params=PARAMS)
    assert [x["location"] for x in r.json()["locations"]] == ["store-7"]


@pytest.mark.parametrize(
    "bad",
    [
        {"radius_km": 0},
        {"radius_km": -5},
        {"radius_km": 20001},
        {"radius_km": "inf"},
        {"radius_km": "nan"},
        {"lat": 91},
        {"lon": -180.01},
        {"lat": "north"},
        {"quantity": 0},
        {"limit": 0},
    ],
)
async def test_nearby_refuses_bad_parameters(client: httpx.AsyncClient, bad: dict) -> None:
    r = await client.get("/v1/availability/S/nearby", params={**PARAMS, **bad})
    assert_problem(r, 422, "invalid_request")


async def test_nearby_needs_coordinates_and_radius(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/availability/S/nearby", params={"lat": 1, "lon": 2})
    assert_problem(r, 422, "invalid_request")


async def test_cart_nearby_answers_stores_that_serve_every_line(
    client: httpx.AsyncClient,
) -> None:
    stock = {
        ("A", "store-2"): 5,
        ("B", "store-2"): 0,
        ("A", "store-7"): 1,
        ("B", "store-7"): 2,
        ("A", "store-3"): 2,
        ("B", "store-3"): 1,
    }
    await seed_stores(client, stock)
    body = {
        "lines": [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 1}],
        "lat": HERE[0],
        "lon": HERE[1],
        "radius_km": 25,
    }
    r = await client.post("/v1/availability/nearby", json=body)
    assert r.status_code == 200, r.text
    locs = r.json()["locations"]
    assert [x["location"] for x in locs] == ["store-7", "store-3"]
    assert locs[0]["lines"] == [{"sku": "A", "available": 1}, {"sku": "B", "available": 2}]
    for x in locs:
        assert x["distance_km"] == pytest.approx(
            haversine_km(HERE, STORES[x["location"]]), abs=1e-3
        )
    body["lines"][0]["quantity"] = 2
    r = await client.post("/v1/availability/nearby", json=body)
    assert [x["location"] for x in r.json()["locations"]] == ["store-3"]


@pytest.mark.parametrize(
    "bad",
    [
        {"radius_km": 0},
        {"radius_km": 1e9},
        {"lat": -90.5},
        {"lon": "2.3"},
        {"lines": []},
        {"limit": 0},
    ],
)
async def test_cart_nearby_refuses_bad_input(client: httpx.AsyncClient, bad: dict) -> None:
    body = {"lines": [{"sku": "A", "quantity": 1}], "lat": 1.0, "lon": 2.0, "radius_km": 5, **bad}
    assert_problem(await client.post("/v1/availability/nearby", json=body), 422, "invalid_request")


async def test_nearby_for_an_unknown_channel_is_404(client: httpx.AsyncClient) -> None:
    await seed_stores(client, {("S", "store-2"): 1})
    r = await client.get("/v1/availability/S/nearby", params={**PARAMS, "channel": "nope"})
    assert_problem(r, 404, "channel_not_found")
    body = {"lines": [{"sku": "S"}], **PARAMS, "channel": "nope"}
    assert_problem(
        await client.post("/v1/availability/nearby", json=body), 404, "channel_not_found"
    )
