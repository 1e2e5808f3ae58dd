"""GET /v1/availability/{sku} and POST /v1/availability/query."""

from __future__ import annotations

import httpx
import pytest

from tests.api.helpers import assert_problem, hold, skus_in_distinct_partitions
from tests.conftest import seed


async def get(client: httpx.AsyncClient, sku: str, **params: str) -> httpx.Response:
    return await client.get(f"/v1/availability/{sku}", params=params)


async def test_channel_availability_sums_its_eligible_locations(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 5, ("sku-1", "store-a"): 3, ("sku-1", "store-b"): 2})
    r = await get(client, "sku-1", channel="web")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["sku"] == "sku-1"
    assert body["channel"] == "web"
    assert body["available"] == 10
    assert {(x["location"], x["available"]) for x in body["locations"]} == {
        ("dc", 5),
        ("store-a", 3),
        ("store-b", 2),
    }


async def test_channel_availability_ignores_locations_the_channel_does_not_see(
    client: httpx.AsyncClient,
) -> None:
    await seed(
        client,
        {("sku-1", "dc"): 5, ("sku-1", "store-a"): 3, ("sku-1", "store-b"): 2},
        channels={"web": ["dc"], "pos-a": ["store-a"]},
    )
    web = (await get(client, "sku-1", channel="web")).json()
    pos = (await get(client, "sku-1", channel="pos-a")).json()
    assert web["available"] == 5
    assert [x["location"] for x in web["locations"]] == ["dc"]
    assert pos["available"] == 3
    assert [x["location"] for x in pos["locations"]] == ["store-a"]


async def test_availability_subtracts_safety_stock(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "store-a"): 3})
    await client.put("/v1/stock/sku-1/dc", json={"on_hand": 10, "safety_stock": 4})
    body = (await get(client, "sku-1", channel="web")).json()
    assert body["available"] == 9
    assert {x["location"]: x["available"] for x in body["locations"]}["dc"] == 6


async def test_availability_subtracts_held_and_committed_units(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 10})
    h = await hold(client, [{"sku": "sku-1", "quantity": 3}])
    await client.post(f"/v1/holds/{h['id']}/commit")
    await hold(client, [{"sku": "sku-1", "quantity": 2}])
    assert (await get(client, "sku-1", channel="web")).json()["available"] == 5


async def test_a_negative_position_never_reduces_the_channel_sum(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): -5, ("sku-1", "store-a"): 3})
    body = (await get(client, "sku-1", channel="web")).json()
    assert body["available"] == 3
    by_loc = {x["location"]: x["available"] for x in body["locations"]}
    assert by_loc["dc"] == 0


async def test_safety_stock_above_on_hand_gives_zero_not_negative(
    client: httpx.AsyncClient,
) -> None:
    await seed(client)
    await client.put("/v1/stock/sku-1/dc", json={"on_hand": 2, "safety_stock": 5})
    body = (await get(client, "sku-1", channel="web")).json()
    assert body["available"] == 0
    assert body["status"] == "out_of_stock"


@pytest.mark.parametrize(
    ("on_hand", "status"),
    [
        (0, "out_of_stock"),
        (1, "low_stock"),
        (4, "low_stock"),
        (5, "in_stock"),
        (100, "in_stock"),
    ],
)
async def test_status_follows_the_channel_low_stock_threshold(
    client: httpx.AsyncClient, on_hand: int, status: str
) -> None:
    await seed(client, {("sku-1", "dc"): on_hand})
    await client.put("/v1/channels/web", json={"locations": ["dc"], "low_stock_threshold": 4})
    body = (await get(client, "sku-1", channel="web")).json()
    assert body["available"] == on_hand
    assert body["status"] == status


async def test_status_uses_each_channel_own_threshold(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 3})
    await client.put("/v1/channels/web", json={"locations": ["dc"], "low_stock_threshold": 5})
    await client.put("/v1/channels/app", json={"locations": ["dc"], "low_stock_threshold": 1})
    assert (await get(client, "sku-1", channel="web")).json()["status"] == "low_stock"
    assert (await get(client, "sku-1", channel="app")).json()["status"] == "in_stock"


async def test_availability_of_a_sku_never_stocked_is_zero_and_out_of_stock(
    client: httpx.AsyncClient,
) -> None:
    await seed(client)
    body = (await get(client, "ghost", channel="web")).json()
    assert body["available"] == 0
    assert body["status"] == "out_of_stock"


async def test_availability_at_one_location_reports_that_location_only(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 5, ("sku-1", "store-a"): 3})
    r = await get(client, "sku-1", location="store-a")
    assert r.status_code == 200
    body = r.json()
    assert body["available"] == 3
    assert body["locations"] == [{"location": "store-a", "available": 3}]


async def test_availability_for_channel_and_location_is_that_location_within_the_channel(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 5, ("sku-1", "store-a"): 3})
    body = (await get(client, "sku-1", channel="web", location="store-a")).json()
    assert body["channel"] == "web"
    assert body["available"] == 3
    assert body["locations"] == [{"location": "store-a", "available": 3}]


async def test_availability_without_channel_or_location_sums_every_stocked_location(
    client: httpx.AsyncClient,
) -> None:
    await seed(
        client,
        {("sku-1", "dc"): 5, ("sku-1", "store-a"): 3, ("sku-1", "store-b"): 1},
        channels={"web": ["dc"]},
    )
    body = (await get(client, "sku-1")).json()
    assert body["channel"] is None
    assert body["available"] == 9
    assert {x["location"] for x in body["locations"]} == {"dc", "store-a", "store-b"}


async def test_availability_for_unknown_channel_is_404_channel_not_found(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    assert_problem(await get(client, "sku-1", channel="nope"), 404, "channel_not_found")


async def test_availability_at_unknown_location_is_404_location_not_found(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    assert_problem(await get(client, "sku-1", location="nope"), 404, "location_not_found")


async def test_availability_with_bad_channel_characters_is_422(client: httpx.AsyncClient) -> None:
    await seed(client)
    assert_problem(await get(client, "sku-1", channel="we b"), 422, "invalid_request")


# -- batch ---------------------------------------------------------------------------------


async def query(client: httpx.AsyncClient, **body: object) -> httpx.Response:
    return await client.post("/v1/availability/query", json=body)


async def test_batch_query_returns_one_result_per_sku_in_the_order_asked(
    client: httpx.AsyncClient,
) -> None:
    skus = skus_in_distinct_partitions(5, "batch")
    await seed(client, {(sku, "dc"): i + 1 for i, sku in enumerate(skus)})
    asked = [skus[3], skus[0], skus[4], "ghost", skus[1], skus[2]]
    r = await query(client, skus=asked, channel="web")
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["sku"] for x in results] == asked
    expected = {sku: i + 1 for i, sku in enumerate(skus)} | {"ghost": 0}
    assert [x["available"] for x in results] == [expected[s] for s in asked]


async def test_batch_query_matches_the_single_sku_answers(client: httpx.AsyncClient) -> None:
    skus = skus_in_distinct_partitions(4, "same-as-single")
    await seed(
        client,
        {(skus[0], "dc"): 9, (skus[1], "store-a"): 1, (skus[2], "store-b"): 3, (skus[3], "dc"): 0},
    )
    await hold(client, [{"sku": skus[0], "quantity": 2}])
    results = (await query(client, skus=skus, channel="web")).json()["results"]
    for sku, result in zip(skus, results, strict=True):
        assert result == (await get(client, sku, channel="web")).json()


async def test_batch_query_has_status_per_sku(client: httpx.AsyncClient) -> None:
    await seed(client, {("a", "dc"): 10, ("b", "dc"): 2, ("c", "dc"): 0})
    results = (await query(client, skus=["a", "b", "c"], channel="web")).json()["results"]
    assert [x["status"] for x in results] == ["in_stock", "low_stock", "out_of_stock"]


async def test_batch_query_with_locations_restricts_the_sum_to_them(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 5, ("sku-1", "store-a"): 3, ("sku-1", "store-b"): 2})
    r = await query(client, skus=["sku-1"], channel="web", locations=["store-a", "store-b"])
    (result,) = r.json()["results"]
    assert result["available"] == 5
    assert {x["location"] for x in result["locations"]} == {"store-a", "store-b"}


async def test_batch_query_of_exactly_1000_skus_works(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-7", "dc"): 7, ("sku-999", "store-a"): 2})
    skus = [f"sku-{i}" for i in range(1000)]
    r = await query(client, skus=skus, channel="web")
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["sku"] for x in results] == skus
    assert results[7]["available"] == 7
    assert results[999]["available"] == 2
    assert sum(x["available"] for x in results) == 9


async def test_batch_query_of_1001_skus_is_422(client: httpx.AsyncClient) -> None:
    await seed(client)
    r = await query(client, skus=[f"sku-{i}" for i in range(1001)], channel="web")
    assert_problem(r, 422, "invalid_request")


async def test_batch_query_of_no_skus_is_422(client: httpx.AsyncClient) -> None:
    await seed(client)
    assert_problem(await query(client, skus=[], channel="web"), 422, "invalid_request")


async def test_batch_query_with_unknown_channel_is_404_channel_not_found(
    client: httpx.AsyncClient,
) -> None:
    await seed(client)
    assert_problem(await query(client, skus=["a"], channel="nope"), 404, "channel_not_found")


async def test_batch_query_with_unknown_location_is_404_location_not_found(
    client: httpx.AsyncClient,
) -> None:
    await seed(client)
    r = await query(client, skus=["a"], locations=["nope"])
    assert_problem(r, 404, "location_not_found")


async def test_batch_query_with_a_bad_sku_is_422(client: httpx.AsyncClient) -> None:
    await seed(client)
    assert_problem(await query(client, skus=["ok", "not ok"]), 422, "invalid_request")


async def test_batch_query_with_a_repeated_sku_answers_each_position_asked(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("a", "dc"): 4})
    results = (await query(client, skus=["a", "b", "a"], channel="web")).json()["results"]
    assert [(x["sku"], x["available"]) for x in results] == [("a", 4), ("b", 0), ("a", 4)]
