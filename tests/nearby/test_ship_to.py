"""Holds with `ship_to` (nearest eligible location first, priority breaks ties) and
`max_locations` (a split hold uses at most N locations, the fewest it can)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.helpers import (
    assert_problem,
    hold,
    lines_by_sku,
    position,
    skus_in_distinct_partitions,
    skus_in_one_partition,
)
from tests.nearby.helpers import HERE, STORES, haversine_km, put_location, seed_stores

SHIP_TO = {"lat": HERE[0], "lon": HERE[1]}


async def test_ship_to_sources_from_the_nearest_store_with_stock(
    client: httpx.AsyncClient,
) -> None:
    await seed_stores(client, {("S", "store-3"): 5, ("S", "store-7"): 5, ("S", "dc"): 5})
    h = await hold(client, [{"sku": "S", "quantity": 2}], channel="pos", ship_to=SHIP_TO)
    nearest = min(["store-3", "store-7"], key=lambda s: haversine_km(HERE, STORES[s]))
    assert lines_by_sku(h) == {"S": [(nearest, 2)]}


async def test_without_ship_to_priority_decides(client: httpx.AsyncClient) -> None:
    await seed_stores(client, {("S", "store-3"): 5, ("S", "store-7"): 5, ("S", "dc"): 5})
    h = await hold(client, [{"sku": "S", "quantity": 2}], channel="pos")
    assert lines_by_sku(h) == {"S": [("dc", 2)]}


async def test_ship_to_skips_a_nearer_store_without_enough(client: httpx.AsyncClient) -> None:
    await seed_stores(client, {("S", "store-2"): 1, ("S", "store-7"): 1, ("S", "store-3"): 4})
    h = await hold(client, [{"sku": "S", "quantity": 3}], channel="pos", ship_to=SHIP_TO)
    assert lines_by_sku(h) == {"S": [("store-3", 3)]}


async def test_locations_without_coordinates_come_last(client: httpx.AsyncClient) -> None:
    await seed_stores(client, {("S", "lyon"): 5, ("S", "dc"): 5})
    h = await hold(client, [{"sku": "S", "quantity": 1}], channel="pos", ship_to=SHIP_TO)
    assert lines_by_sku(h) == {"S": [("lyon", 1)]}  # 390 km away, but the dc has no geo


async def test_priority_breaks_a_tie_in_distance(client: httpx.AsyncClient) -> None:
    await seed_stores(client, {})
    for loc, prio in (("twin-a", 50), ("twin-b", 5)):
        await put_location(client, loc, priority=prio, geo={"lat": 48.9, "lon": 2.45})
        await client.put(f"/v1/stock/S/{loc}", json={"on_hand": 5})
    await client.put("/v1/channels/pos", json={"locations": ["twin-a", "twin-b", "store-3"]})
    h = await hold(client, [{"sku": "S", "quantity": 1}], channel="pos", ship_to=SHIP_TO)
    assert lines_by_sku(h) == {"S": [("twin-b", 1)]}


async def test_ship_to_with_bad_coordinates_is_refused(client: httpx.AsyncClient) -> None:
    await seed_stores(client, {("S", "store-2"): 5})
    body: dict[str, Any] = {
        "lines": [{"sku": "S", "quantity": 1}],
        "ship_to": {"lat": 100, "lon": 0},
    }
    assert_problem(await client.post("/v1/holds", json=body), 422, "invalid_request")
    assert (await position(client, "S", "store-2"))["held"] == 0


async def test_max_locations_prefers_the_fewest_locations(client: httpx.AsyncClient) -> None:
    # Nearest first would take store-1, store-2, store-7 (1 + 1 + 1 + ...); the fewest is
    # store-7 (4) + store-3 (2) — or any two stores holding 6 together.
    stock = {("S", "store-1"): 1, ("S", "store-2"): 1, ("S", "store-7"): 4, ("S", "store-3"): 2}
    await seed_stores(client, stock)
    h = await hold(
        client,
        [{"sku": "S", "quantity": 6}],
        channel="pos",
        ship_to=SHIP_TO,
        allow_split=True,
        max_locations=2,
    )
    assert lines_by_sku(h) == {"S": [("store-3", 2), ("store-7", 4)]}


async def test_max_locations_refuses_a_hold_that_needs_more_locations(
    client: httpx.AsyncClient,
) -> None:
    stock = {("S", "store-1"): 2, ("S", "store-2"): 2, ("S", "store-7"): 2}
    await seed_stores(client, stock)
    body = {
        "channel": "pos",
        "allow_split": True,
        "max_locations": 2,
        "lines": [{"sku": "S", "quantity": 6}],
    }
    r = await client.post("/v1/holds", json=body)
    problem = assert_problem(r, 409, "insufficient_stock")
    assert problem["lines"] == [{"sku": "S", "requested": 6, "available": 4}]
    for loc in ("store-1", "store-2", "store-7"):
        assert (await position(client, "S", loc))["held"] == 0
    body["max_locations"] = 3
    assert (await client.post("/v1/holds", json=body)).status_code == 201


async def test_max_locations_caps_a_multi_line_split(client: httpx.AsyncClient) -> None:
    stock = {("A", "store-1"): 1, ("B", "store-1"): 1, ("A", "store-2"): 1, ("B", "store-7"): 1}
    await seed_stores(client, stock)

    a, b = skus_in_one_partition(2, "cap")
    for (sku, loc), n in stock.items():
        await client.put(f"/v1/stock/{ {'A': a, 'B': b}[sku] }/{loc}", json={"on_hand": n})
    lines = [{"sku": a, "quantity": 2}, {"sku": b, "quantity": 1}]
    body = {"channel": "pos", "allow_split": True, "max_locations": 1, "lines": lines}
    assert_problem(await client.post("/v1/holds", json=body), 409, "insufficient_stock")
    h = await hold(client, lines, channel="pos", allow_split=True, max_locations=2)
    assert lines_by_sku(h) == {a: [("store-1", 1), ("store-2", 1)], b: [("store-1", 1)]}


async def test_max_locations_caps_a_split_over_several_partitions(
    client: httpx.AsyncClient,
) -> None:
    a, b = skus_in_distinct_partitions(2, "capmp")
    stock = {(a, "store-1"): 1, (b, "store-1"): 1, (a, "store-2"): 1, (b, "store-7"): 1}
    await seed_stores(client, stock)
    lines = [{"sku": a, "quantity": 2}, {"sku": b, "quantity": 1}]
    body = {"channel": "pos", "allow_split": True, "max_locations": 1, "lines": lines}
    assert_problem(await client.post("/v1/holds", json=body), 409, "insufficient_stock")
    assert (await position(client, a, "store-1"))["held"] == 0
    h = await hold(client, lines, channel="pos", allow_split=True, max_locations=2)
    assert lines_by_sku(h) == {a: [("store-1", 1), ("store-2", 1)], b: [("store-1", 1)]}


async def test_max_locations_is_refused_for_a_split_kit_over_several_partitions(
    client: httpx.AsyncClient,
) -> None:
    a, b = skus_in_distinct_partitions(2, "capkit")
    await seed_stores(client, {(a, "store-1"): 1, (b, "store-1"): 1})
    r = await client.put(
        "/v1/kits/kit", json={"components": [{"sku": a, "quantity": 1}, {"sku": b, "quantity": 1}]}
    )
    assert r.status_code == 200, r.text
    body = {
        "channel": "pos",
        "allow_split": True,
        "max_locations": 2,
        "lines": [{"sku": "kit", "quantity": 1}],
    }
    problem = assert_problem(await client.post("/v1/holds", json=body), 422, "invalid_request")
    assert "several partitions" in problem["detail"]
    assert (await position(client, a, "store-1"))["held"] == 0
