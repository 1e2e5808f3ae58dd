"""PUT /v1/stock/{sku}/{location} and GET /v1/stock/{sku}."""

from __future__ import annotations

import httpx

from tests.api.helpers import assert_problem, hold, positions
from tests.conftest import seed

COUNTERS = {"location", "on_hand", "held", "committed", "safety_stock", "available"}


async def test_put_stock_sets_on_hand_and_returns_the_position(client: httpx.AsyncClient) -> None:
    await seed(client)
    r = await client.put("/v1/stock/sku-1/dc", json={"on_hand": 12})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "location": "dc",
        "on_hand": 12,
        "held": 0,
        "committed": 0,
        "safety_stock": 0,
        "available": 12,
    }


async def test_put_stock_again_replaces_on_hand_absolutely(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 12})
    r = await client.put("/v1/stock/sku-1/dc", json={"on_hand": 4})
    assert r.json()["on_hand"] == 4
    assert (await positions(client, "sku-1"))["dc"]["on_hand"] == 4


async def test_put_stock_with_safety_stock_sets_it_and_available_subtracts_it(
    client: httpx.AsyncClient,
) -> None:
    await seed(client)
    r = await client.put("/v1/stock/sku-1/dc", json={"on_hand": 10, "safety_stock": 3})
    assert r.status_code == 200
    assert r.json()["safety_stock"] == 3
    assert r.json()["available"] == 7


async def test_put_stock_without_safety_stock_keeps_the_previous_value(
    client: httpx.AsyncClient,
) -> None:
    await seed(client)
    await client.put("/v1/stock/sku-1/dc", json={"on_hand": 10, "safety_stock": 3})
    r = await client.put("/v1/stock/sku-1/dc", json={"on_hand": 20})
    assert r.json()["safety_stock"] == 3
    assert r.json()["available"] == 17
    assert (await positions(client, "sku-1"))["dc"]["safety_stock"] == 3


async def test_put_stock_with_safety_stock_zero_clears_it(client: httpx.AsyncClient) -> None:
    await seed(client)
    await client.put("/v1/stock/sku-1/dc", json={"on_hand": 10, "safety_stock": 3})
    r = await client.put("/v1/stock/sku-1/dc", json={"on_hand": 10, "safety_stock": 0})
    assert r.json()["safety_stock"] == 0
    assert r.json()["available"] == 10


async def test_put_stock_accepts_negative_on_hand_and_available_is_zero(
    client: httpx.AsyncClient,
) -> None:
    await seed(client)
    r = await client.put("/v1/stock/sku-1/dc", json={"on_hand": -4})
    assert r.status_code == 200, r.text
    assert r.json()["on_hand"] == -4
    assert r.json()["available"] == 0
    assert (await positions(client, "sku-1"))["dc"]["on_hand"] == -4


async def test_put_stock_with_negative_safety_stock_is_422(client: httpx.AsyncClient) -> None:
    await seed(client)
    r = await client.put("/v1/stock/sku-1/dc", json={"on_hand": 5, "safety_stock": -1})
    assert_problem(r, 422, "invalid_request")
    assert await positions(client, "sku-1") == {}


async def test_put_stock_without_on_hand_is_422(client: httpx.AsyncClient) -> None:
    await seed(client)
    r = await client.put("/v1/stock/sku-1/dc", json={"safety_stock": 1})
    assert_problem(r, 422, "invalid_request")
    assert await positions(client, "sku-1") == {}


async def test_put_stock_at_unknown_location_is_404_location_not_found_and_creates_nothing(
    client: httpx.AsyncClient,
) -> None:
    await seed(client)
    r = await client.put("/v1/stock/sku-1/atlantis", json={"on_hand": 5})
    assert_problem(r, 404, "location_not_found")
    assert await positions(client, "sku-1") == {}


async def test_put_stock_leaves_held_and_committed_untouched(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 10})
    committed = await hold(client, [{"sku": "sku-1", "quantity": 2}])
    await client.post(f"/v1/holds/{committed['id']}/commit")
    await hold(client, [{"sku": "sku-1", "quantity": 3}])
    r = await client.put("/v1/stock/sku-1/dc", json={"on_hand": 8})
    assert r.json() == {
        "location": "dc",
        "on_hand": 8,
        "held": 3,
        "committed": 2,
        "safety_stock": 0,
        "available": 3,
    }


async def test_put_stock_below_held_and_committed_makes_available_zero_not_negative(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 10})
    await hold(client, [{"sku": "sku-1", "quantity": 6}])
    r = await client.put("/v1/stock/sku-1/dc", json={"on_hand": 2})
    assert r.json()["held"] == 6
    assert r.json()["available"] == 0


async def test_get_stock_lists_every_position_with_all_counters(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 10, ("sku-1", "store-a"): 4, ("sku-1", "store-b"): -1})
    await client.put("/v1/stock/sku-1/store-a", json={"on_hand": 4, "safety_stock": 1})
    h = await hold(client, [{"sku": "sku-1", "quantity": 3, "location": "dc"}])
    await client.post(f"/v1/holds/{h['id']}/commit")
    await hold(client, [{"sku": "sku-1", "quantity": 2, "location": "dc"}])
    r = await client.get("/v1/stock/sku-1")
    assert r.status_code == 200
    body = r.json()
    assert body["sku"] == "sku-1"
    for p in body["positions"]:
        assert set(p) >= COUNTERS
    by_loc = {p["location"]: p for p in body["positions"]}
    assert by_loc == {
        "dc": {
            "location": "dc",
            "on_hand": 10,
            "held": 2,
            "committed": 3,
            "safety_stock": 0,
            "available": 5,
        },
        "store-a": {
            "location": "store-a",
            "on_hand": 4,
            "held": 0,
            "committed": 0,
            "safety_stock": 1,
            "available": 3,
        },
        "store-b": {
            "location": "store-b",
            "on_hand": -1,
            "held": 0,
            "committed": 0,
            "safety_stock": 0,
            "available": 0,
        },
    }


async def test_get_stock_of_a_sku_never_stocked_has_no_positions(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/v1/stock/never-seen")
    assert r.status_code == 200
    assert r.json() == {"sku": "never-seen", "positions": []}


async def test_stock_of_one_sku_does_not_touch_another(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 10, ("sku-2", "dc"): 3})
    await client.put("/v1/stock/sku-1/dc", json={"on_hand": 1})
    assert (await positions(client, "sku-2"))["dc"]["on_hand"] == 3


async def test_put_stock_keeps_the_largest_allowed_counts_exact(client: httpx.AsyncClient) -> None:
    await seed(client)
    big = 10**12
    r = await client.put("/v1/stock/sku-1/dc", json={"on_hand": big, "safety_stock": big - 7})
    assert r.json()["available"] == 7
    r = await client.put("/v1/stock/sku-1/store-a", json={"on_hand": -big})
    assert r.json()["on_hand"] == -big
    by_loc = await positions(client, "sku-1")
    assert (by_loc["dc"]["on_hand"], by_loc["dc"]["safety_stock"]) == (big, big - 7)
    assert by_loc["store-a"]["on_hand"] == -big


async def test_put_stock_beyond_the_largest_allowed_count_is_422(
    client: httpx.AsyncClient,
) -> None:
    await seed(client)
    r = await client.put("/v1/stock/sku-1/dc", json={"on_hand": 10**12 + 1})
    assert_problem(r, 422, "invalid_request")
    assert await positions(client, "sku-1") == {}
