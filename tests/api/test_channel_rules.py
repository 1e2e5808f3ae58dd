"""Channel rules: a channel's buffer (units or percent of the total kept back from it) and its
excluded skus, in availability, batch availability and holds through the channel
(docs/architecture.md "Channel rules")."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.helpers import (
    assert_problem,
    hold,
    positions,
    skus_in_distinct_partitions,
    skus_in_one_partition,
)
from tests.conftest import seed
from tests.supply.helpers import days, ok_supply

ALL = ["dc", "store-a", "store-b"]


async def rules(client: httpx.AsyncClient, channel: str, **body: Any) -> dict[str, Any]:
    """PUT the channel over every location, threshold 2, with these rules."""
    payload = {"locations": ALL, "low_stock_threshold": 2, **body}
    r = await client.put(f"/v1/channels/{channel}", json=payload)
    assert r.status_code == 200, r.text
    saved: dict[str, Any] = r.json()
    return saved


async def figure(
    client: httpx.AsyncClient, sku: str, channel: str, **params: str
) -> dict[str, Any]:
    r = await client.get(f"/v1/availability/{sku}", params={"channel": channel, **params})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


# -- configuration -------------------------------------------------------------------------


async def test_put_channel_stores_its_buffer_and_exclusions(client: httpx.AsyncClient) -> None:
    await seed(client)
    saved = await rules(client, "market", buffer={"percent": 10}, exclude_skus=["x", "y", "x"])
    assert saved["buffer"] == {"percent": 10}
    assert saved["exclude_skus"] == ["x", "y"]  # repeats dropped, order kept
    listed = {c["id"]: c for c in (await client.get("/v1/channels")).json()["channels"]}
    assert listed["market"] == saved


async def test_put_channel_without_rules_clears_them(client: httpx.AsyncClient) -> None:
    await seed(client)
    await rules(client, "market", buffer={"units": 3}, exclude_skus=["x"])
    saved = await rules(client, "market")
    assert (saved["buffer"], saved["exclude_skus"]) == (None, [])


@pytest.mark.parametrize(
    "body",
    [
        {"buffer": {"units": 1, "percent": 5}},  # one kind of buffer
        {"buffer": {}},
        {"buffer": {"units": -1}},
        {"buffer": {"units": "2"}},
        {"buffer": {"percent": 101}},
        {"buffer": {"percent": 12.5}},
        {"buffer": {"ratio": 3}},
        {"buffer": 2},
        {"exclude_skus": ["not a sku!"]},
        {"exclude_skus": "sku-1"},
        {"exclude_skus": [f"s{i}" for i in range(1001)]},
    ],
)
async def test_invalid_channel_rules_are_422_and_change_nothing(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    await seed(client)
    before = await rules(client, "market", buffer={"units": 1})
    r = await client.put("/v1/channels/market", json={"locations": ALL, **body})
    assert_problem(r, 422, "invalid_request")
    listed = {c["id"]: c for c in (await client.get("/v1/channels")).json()["channels"]}
    assert listed["market"] == before


# -- availability --------------------------------------------------------------------------


async def test_unit_buffer_keeps_units_back_from_the_channel_total(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 6, ("sku-1", "store-a"): 4})
    await rules(client, "market", buffer={"units": 3})
    body = await figure(client, "sku-1", "market")
    assert (body["available"], body["status"]) == (7, "in_stock")
    # No location shows more than the channel may promise.
    assert body["locations"] == [
        {"location": "dc", "available": 6},
        {"location": "store-a", "available": 4},
        {"location": "store-b", "available": 0},
    ]
    await rules(client, "market", buffer={"units": 8})
    body = await figure(client, "sku-1", "market")
    assert body["available"] == 2
    assert [x["available"] for x in body["locations"]] == [2, 2, 0]
    assert (await figure(client, "sku-1", "web"))["available"] == 10  # other channels: all


async def test_percent_buffer_keeps_back_rounded_up_units(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 15})
    await rules(client, "market", buffer={"percent": 10})
    assert (await figure(client, "sku-1", "market"))["available"] == 13  # 1.5 kept -> 2
    await rules(client, "market", buffer={"percent": 100})
    assert (await figure(client, "sku-1", "market"))["status"] == "out_of_stock"


async def test_buffer_applies_after_safety_stock_and_before_the_threshold(
    client: httpx.AsyncClient,
) -> None:
    await seed(client)
    r = await client.put("/v1/stock/sku-1/dc", json={"on_hand": 10, "safety_stock": 4})
    assert r.status_code == 200
    await rules(client, "market", buffer={"units": 4})
    body = await figure(client, "sku-1", "market")
    assert (body["available"], body["status"]) == (2, "low_stock")  # 10 - 4 - 4 <= 2


async def test_buffer_never_makes_a_figure_negative(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 2})
    await rules(client, "market", buffer={"units": 5})
    body = await figure(client, "sku-1", "market")
    assert (body["available"], body["status"]) == (0, "out_of_stock")


async def test_buffer_applies_to_the_locations_asked_for(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 6, ("sku-1", "store-a"): 4})
    await rules(client, "market", buffer={"units": 3})
    assert (await figure(client, "sku-1", "market", location="store-a"))["available"] == 1


async def test_excluded_sku_is_out_of_stock_on_that_channel_only(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 6, ("sku-2", "dc"): 6})
    await rules(client, "market", exclude_skus=["sku-1"])
    body = await figure(client, "sku-1", "market")
    assert (body["available"], body["status"]) == (0, "out_of_stock")
    assert {x["available"] for x in body["locations"]} == {0}
    assert (await figure(client, "sku-2", "market"))["available"] == 6
    assert (await figure(client, "sku-1", "web"))["available"] == 6


async def test_an_excluded_sku_shows_nothing_on_its_way_through_the_channel(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 0})
    await rules(client, "market", exclude_skus=["sku-1"])
    await ok_supply(client, "sku-1", "dc", "po-1", 5, days(3))
    shown = await figure(client, "sku-1", "web")
    assert (shown["incoming"], shown["next_available_at"] is not None) == (5, True)
    hidden = await figure(client, "sku-1", "market")
    assert (hidden["incoming"], hidden["next_available_at"]) == (0, None)
    r = await client.post("/v1/availability/query", json={"skus": ["sku-1"], "channel": "market"})
    assert r.json()["results"][0]["incoming"] == 0
    r = await client.get("/v1/availability/sku-1/timeline", params={"channel": "market"})
    assert {w["available"] for w in r.json()["windows"]} == {0}


async def test_batch_availability_applies_the_rules_per_sku(client: httpx.AsyncClient) -> None:
    skus = skus_in_distinct_partitions(2, "rules") + skus_in_one_partition(2, "rules-same")
    await seed(client, {(sku, "dc"): 10 for sku in skus})
    await rules(client, "market", buffer={"percent": 25}, exclude_skus=[skus[1]])
    r = await client.post("/v1/availability/query", json={"skus": skus, "channel": "market"})
    assert r.status_code == 200, r.text
    got = {x["sku"]: (x["available"], x["status"]) for x in r.json()["results"]}
    assert got == {
        skus[0]: (7, "in_stock"),  # 2.5 kept -> 3
        skus[1]: (0, "out_of_stock"),
        skus[2]: (7, "in_stock"),
        skus[3]: (7, "in_stock"),
    }
    for sku in skus:  # the batch answers what the single read does
        assert (await figure(client, sku, "market"))["available"] == got[sku][0]


# -- holds through the channel -------------------------------------------------------------


async def test_a_channel_hold_never_takes_the_units_its_buffer_keeps_back(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 6, ("sku-1", "store-a"): 4})
    await rules(client, "market", buffer={"units": 3})
    before = await positions(client, "sku-1")
    r = await client.post(
        "/v1/holds", json={"channel": "market", "lines": [{"sku": "sku-1", "quantity": 8}]}
    )
    body = assert_problem(r, 409, "insufficient_stock")
    assert [(x["sku"], x["requested"], x["available"]) for x in body["lines"]] == [("sku-1", 8, 7)]
    assert await positions(client, "sku-1") == before
    await hold(client, [{"sku": "sku-1", "quantity": 5}], channel="market")
    assert (await figure(client, "sku-1", "market"))["available"] == 2
    await hold(client, [{"sku": "sku-1", "quantity": 2, "location": "store-a"}], channel="market")
    r = await client.post(
        "/v1/holds",
        json={"channel": "market", "lines": [{"sku": "sku-1", "quantity": 1, "location": "dc"}]},
    )
    assert_problem(r, 409, "insufficient_stock")
    # The units kept back from `market` stay on sale to the other channels.
    await hold(client, [{"sku": "sku-1", "quantity": 3}], channel="web", allow_split=True)


async def test_a_percent_buffer_caps_every_line_of_the_sku_together(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 10, ("sku-1", "store-a"): 10})
    await rules(client, "market", buffer={"percent": 10})
    lines = [
        {"sku": "sku-1", "quantity": 10, "location": "dc"},
        {"sku": "sku-1", "quantity": 9, "location": "store-a"},
    ]
    r = await client.post("/v1/holds", json={"channel": "market", "lines": lines})
    body = assert_problem(r, 409, "insufficient_stock")
    assert [(x["sku"], x["requested"], x["available"]) for x in body["lines"]] == [
        ("sku-1", 19, 18)
    ]
    lines[1]["quantity"] = 8
    await hold(client, lines, channel="market")


async def test_an_excluded_sku_cannot_be_held_through_the_channel(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 6, ("sku-2", "dc"): 6})
    await rules(client, "market", exclude_skus=["sku-1"])
    lines = [{"sku": "sku-2", "quantity": 1}, {"sku": "sku-1", "quantity": 1}]
    r = await client.post("/v1/holds", json={"channel": "market", "lines": lines})
    body = assert_problem(r, 409, "insufficient_stock")  # as out of stock: what it sees
    assert [(x["sku"], x["requested"], x["available"]) for x in body["lines"]] == [("sku-1", 1, 0)]
    assert (await positions(client, "sku-2"))["dc"]["held"] == 0  # all or nothing
    await hold(client, [{"sku": "sku-1", "quantity": 1}], channel="web")


async def test_a_keyed_channel_hold_refused_by_the_buffer_replays_its_409(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 6})
    await rules(client, "market", buffer={"units": 3})
    body = {"channel": "market", "lines": [{"sku": "sku-1", "quantity": 4}]}
    first = await client.post("/v1/holds", json=body, headers={"Idempotency-Key": "buf-1"})
    assert_problem(first, 409, "insufficient_stock")
    await rules(client, "market")  # the buffer lifted: the retry is still the first answer
    retry = await client.post("/v1/holds", json=body, headers={"Idempotency-Key": "buf-1"})
    assert (retry.status_code, retry.content) == (409, first.content)
    assert retry.headers["idempotent-replayed"] == "true"
    assert (await figure(client, "sku-1", "market"))["available"] == 6


@pytest.mark.parametrize("split", [False, True])
async def test_a_multi_partition_channel_hold_respects_each_skus_buffer(
    client: httpx.AsyncClient, split: bool
) -> None:
    a, b = skus_in_distinct_partitions(2, "rules-mp")
    await seed(client, {(a, "dc"): 5, (a, "store-a"): 5, (b, "dc"): 5})
    await rules(client, "market", buffer={"units": 2})
    before = {sku: await positions(client, sku) for sku in (a, b)}
    lines = [{"sku": a, "quantity": 3}, {"sku": b, "quantity": 4}]
    body = {"channel": "market", "allow_split": split, "lines": lines}
    problem = assert_problem(await client.post("/v1/holds", json=body), 409, "insufficient_stock")
    assert (b, 4, 3) in [(x["sku"], x["requested"], x["available"]) for x in problem["lines"]]
    assert {sku: await positions(client, sku) for sku in (a, b)} == before
    lines[1]["quantity"] = 3
    await hold(client, lines, channel="market", allow_split=split)
    assert (await figure(client, b, "market"))["available"] == 0


async def test_a_refused_multi_partition_channel_hold_leaves_no_event(
    client: httpx.AsyncClient,
) -> None:
    a, b = skus_in_distinct_partitions(2, "rules-ev")
    await seed(client, {(a, "dc"): 5, (b, "dc"): 5})
    await rules(client, "market", buffer={"units": 2})
    log = await client.get("/v1/events/log", params={"limit": 100})
    lines = [{"sku": a, "quantity": 1}, {"sku": b, "quantity": 4}]
    r = await client.post("/v1/holds", json={"channel": "market", "lines": lines})
    assert_problem(r, 409, "insufficient_stock")
    after = await client.get("/v1/events/log", params={"after": log.json()["next"]})
    assert after.json()["events"] == []  # not even a part reserved and aborted


async def test_a_multi_partition_channel_hold_of_an_excluded_sku_holds_nothing(
    client: httpx.AsyncClient,
) -> None:
    a, b = skus_in_distinct_partitions(2, "rules-mx")
    await seed(client, {(a, "dc"): 5, (b, "dc"): 5})
    await rules(client, "market", exclude_skus=[b])
    lines = [{"sku": a, "quantity": 1, "location": "dc"}, {"sku": b, "quantity": 1}]
    r = await client.post("/v1/holds", json={"channel": "market", "lines": lines})
    problem = assert_problem(r, 409, "insufficient_stock")
    assert (b, 1, 0) in [(x["sku"], x["requested"], x["available"]) for x in problem["lines"]]
    assert (await positions(client, a))["dc"]["held"] == 0


# -- events out ----------------------------------------------------------------------------


async def test_a_channels_event_feed_leaves_out_the_skus_it_excludes(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 3, ("sku-2", "dc"): 3})
    await rules(client, "market", exclude_skus=["sku-1"])
    r = await client.get("/v1/events/log", params={"channel": "market", "limit": 100})
    assert r.status_code == 200, r.text
    assert {e["sku"] for e in r.json()["events"]} == {"sku-2"}
    r = await client.get("/v1/events/log", params={"channel": "web", "limit": 100})
    assert {e["sku"] for e in r.json()["events"]} == {"sku-1", "sku-2"}
