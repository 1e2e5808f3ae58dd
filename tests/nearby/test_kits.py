"""Kits: definitions, availability (min over components of floor(available / quantity)) and
holds that reserve every component at one location, all or nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.api.helpers import (
    assert_problem,
    hold,
    lines_by_sku,
    position,
    skus_in_distinct_partitions,
    skus_in_one_partition,
)
from tests.nearby.helpers import HERE, seed_stores

KIT = {"components": [{"sku": "frame", "quantity": 1}, {"sku": "wheel", "quantity": 2}]}


async def make_kit(client: httpx.AsyncClient, sku: str, components: dict[str, int]) -> None:
    body = {"components": [{"sku": s, "quantity": q} for s, q in components.items()]}
    r = await client.put(f"/v1/kits/{sku}", json=body)
    assert r.status_code == 200, r.text


async def test_a_kit_is_defined_read_listed_and_deleted(client: httpx.AsyncClient) -> None:
    await seed_stores(client, {("frame", "store-1"): 1, ("wheel", "store-1"): 1})
    r = await client.put("/v1/kits/bike", json=KIT)
    assert r.status_code == 200, r.text
    assert r.json() == {"sku": "bike", **KIT}
    assert (await client.get("/v1/kits/bike")).json() == {"sku": "bike", **KIT}
    assert (await client.get("/v1/kits")).json() == {"kits": [{"sku": "bike", **KIT}]}
    assert (await client.delete("/v1/kits/bike")).status_code == 200
    assert_problem(await client.get("/v1/kits/bike"), 404, "kit_not_found")
    assert_problem(await client.delete("/v1/kits/bike"), 404, "kit_not_found")


@pytest.mark.parametrize(
    "components",
    [
        [{"sku": "bike", "quantity": 1}],
        [{"sku": "frame", "quantity": 0}],
        [{"sku": "frame", "quantity": -1}],
        [{"sku": "frame", "quantity": 1}, {"sku": "frame", "quantity": 2}],
        [{"sku": "nobody-stocks-this", "quantity": 1}],
        [],
        [{"sku": "bad sku!", "quantity": 1}],
    ],
)
async def test_bad_kits_are_refused_and_change_nothing(
    client: httpx.AsyncClient, components: list[dict[str, Any]]
) -> None:
    await seed_stores(client, {("frame", "store-1"): 1})
    r = await client.put("/v1/kits/bike", json={"components": components})
    assert_problem(r, 422, "invalid_request")
    assert_problem(await client.get("/v1/kits/bike"), 404, "kit_not_found")


async def test_a_kit_containing_itself_through_another_kit_is_refused(
    client: httpx.AsyncClient,
) -> None:
    await seed_stores(client, {("frame", "store-1"): 1, ("wheel", "store-1"): 1})
    await make_kit(client, "bike", {"frame": 1, "wheel": 2})
    await make_kit(client, "family", {"bike": 2})
    r = await client.put("/v1/kits/bike", json={"components": [{"sku": "family", "quantity": 1}]})
    assert_problem(r, 422, "invalid_request")
    assert (await client.get("/v1/kits/bike")).json() == {"sku": "bike", **KIT}
    r = await client.delete("/v1/kits/bike")  # family still uses it
    assert_problem(r, 422, "invalid_request")


async def test_kit_availability_is_the_min_over_components(client: httpx.AsyncClient) -> None:
    stock = {
        ("frame", "store-1"): 3,
        ("wheel", "store-1"): 5,
        ("frame", "store-2"): 1,
        ("wheel", "store-2"): 9,
        ("frame", "store-7"): 4,
    }
    await seed_stores(client, stock)
    await make_kit(client, "bike", {"frame": 1, "wheel": 2})
    r = await client.get("/v1/availability/bike", params={"channel": "pos"})
    by_loc = {x["location"]: x["available"] for x in r.json()["locations"]}
    assert by_loc["store-1"] == 2 and by_loc["store-2"] == 1 and by_loc["store-7"] == 0
    assert r.json()["available"] == 3
    r = await client.post(
        "/v1/availability/query", json={"skus": ["bike", "frame"], "channel": "pos"}
    )
    assert [x["available"] for x in r.json()["results"]] == [3, 8]


async def test_a_nested_kit_counts_its_base_components(client: httpx.AsyncClient) -> None:
    await seed_stores(client, {("frame", "store-1"): 4, ("wheel", "store-1"): 8})
    await make_kit(client, "bike", {"frame": 1, "wheel": 2})
    await make_kit(client, "pair", {"bike": 2})
    r = await client.get("/v1/availability/pair", params={"location": "store-1"})
    assert r.json()["available"] == 2


async def test_a_kit_shows_in_nearby(client: httpx.AsyncClient) -> None:
    await seed_stores(
        client,
        {
            ("frame", "store-2"): 1,
            ("wheel", "store-2"): 1,
            ("frame", "store-7"): 1,
            ("wheel", "store-7"): 2,
        },
    )
    await make_kit(client, "bike", {"frame": 1, "wheel": 2})
    params = {"lat": HERE[0], "lon": HERE[1], "radius_km": 25}
    r = await client.get("/v1/availability/bike/nearby", params=params)
    assert [(x["location"], x["available"]) for x in r.json()["locations"]] == [("store-7", 1)]


async def test_a_kit_hold_reserves_every_component_at_one_location(
    client: httpx.AsyncClient,
) -> None:
    await seed_stores(
        client,
        {("frame", "dc"): 1, ("wheel", "dc"): 1, ("frame", "store-7"): 2, ("wheel", "store-7"): 4},
    )
    await make_kit(client, "bike", {"frame": 1, "wheel": 2})
    h = await hold(client, [{"sku": "bike", "quantity": 2}], channel="pos")
    assert lines_by_sku(h) == {"frame": [("store-7", 2)], "wheel": [("store-7", 4)]}
    r = await client.get("/v1/availability/bike", params={"channel": "pos"})
    assert r.json()["available"] == 0


async def test_a_kit_hold_at_a_pinned_location(client: httpx.AsyncClient) -> None:
    await seed_stores(client, {("frame", "store-7"): 1, ("wheel", "store-7"): 1})
    await make_kit(client, "bike", {"frame": 1, "wheel": 2})
    body = {"lines": [{"sku": "bike", "quantity": 1, "location": "store-7"}]}
    problem = assert_problem(await client.post("/v1/holds", json=body), 409, "insufficient_stock")
    assert problem["lines"][0]["sku"] == "wheel"
    assert (await position(client, "frame", "store-7"))["held"] == 0


async def test_two_lines_sharing_a_component_never_oversell_it(
    client: httpx.AsyncClient,
) -> None:
    await seed_stores(
        client, {("frame", "store-1"): 1, ("wheel", "store-1"): 3, ("saddle", "store-1"): 1}
    )
    await make_kit(client, "bike", {"frame": 1, "wheel": 2})
    await make_kit(client, "unicycle", {"saddle": 1, "wheel": 1})
    await make_kit(client, "spare", {"wheel": 1})
    lines = [
        {"sku": "bike", "quantity": 1},
        {"sku": "unicycle", "quantity": 1},
        {"sku": "spare", "quantity": 1},
    ]
    r = await client.post("/v1/holds", json={"channel": "pos", "lines": lines, "allow_split": True})
    assert_problem(r, 409, "insufficient_stock")  # 4 wheels asked, 3 there
    assert (await position(client, "wheel", "store-1"))["held"] == 0
    h = await hold(client, lines[:2], channel="pos")
    assert lines_by_sku(h)["wheel"] == [("store-1", 3)]


@pytest.mark.parametrize(
    "place",
    [skus_in_one_partition, skus_in_distinct_partitions],
    ids=["one_partition", "several_partitions"],
)
async def test_a_split_hold_keeps_each_kit_whole(
    client: httpx.AsyncClient, place: Callable[[int, str], list[str]]
) -> None:
    frame, wheel = place(2, "kitsplit")
    # Neither store has two whole kits; each has one.
    await seed_stores(
        client,
        {
            (frame, "store-1"): 1,
            (wheel, "store-1"): 3,
            (frame, "store-7"): 5,
            (wheel, "store-7"): 2,
        },
    )
    await make_kit(client, "bike", {frame: 1, wheel: 2})
    lines = [{"sku": "bike", "quantity": 1}, {"sku": "bike", "quantity": 1}]
    h = await hold(client, lines, channel="pos", allow_split=True)
    assert lines_by_sku(h) == {
        frame: [("store-1", 1), ("store-7", 1)],
        wheel: [("store-1", 2), ("store-7", 2)],
    }


async def test_a_kit_over_several_partitions_holds_all_or_nothing(
    client: httpx.AsyncClient,
) -> None:
    frame, wheel = skus_in_distinct_partitions(2, "kitmp")
    await seed_stores(
        client,
        {
            (frame, "store-1"): 1,
            (wheel, "store-1"): 1,
            (frame, "store-7"): 1,
            (wheel, "store-7"): 2,
        },
    )
    await make_kit(client, "bike", {frame: 1, wheel: 2})
    h = await hold(client, [{"sku": "bike", "quantity": 1}], channel="pos")
    assert lines_by_sku(h) == {frame: [("store-7", 1)], wheel: [("store-7", 2)]}
    r = await client.post(
        "/v1/holds",
        json={"channel": "pos", "allow_split": True, "lines": [{"sku": "bike", "quantity": 1}]},
    )
    assert_problem(r, 409, "insufficient_stock")
    assert (await position(client, frame, "store-1"))["held"] == 0
    assert (await position(client, wheel, "store-1"))["held"] == 0


async def test_a_kit_reader_gets_the_events_of_its_components(client: httpx.AsyncClient) -> None:
    frame, wheel = skus_in_distinct_partitions(2, "kitev")
    await seed_stores(client, {(frame, "store-7"): 2, (wheel, "store-7"): 4, ("other", "dc"): 1})
    await make_kit(client, "bike", {frame: 1, wheel: 2})
    await hold(client, [{"sku": "bike", "quantity": 1}], channel="pos")
    await client.put(f"/v1/stock/{wheel}/store-7", json={"on_hand": 5})
    r = await client.get("/v1/events/log", params={"sku": "bike", "limit": 100})
    assert r.status_code == 200, r.text
    seen = [(e["type"], e["sku"]) for e in r.json()["events"]]
    assert sorted(seen) == sorted(
        [
            ("stock.set", frame),
            ("stock.set", wheel),
            ("hold.reserved", frame),
            ("hold.reserved", wheel),
            ("stock.set", wheel),
        ]
    )
    assert seen[-1] == ("stock.set", wheel)  # in the feed's order
