"""Where the service sources a hold's lines."""

from __future__ import annotations

import httpx
import pytest

from tests.api.helpers import (
    LAYOUTS,
    assert_problem,
    hold,
    lines_by_sku,
    position,
    skus_laid_out,
    snapshot,
)
from tests.conftest import seed


def two_skus(layout: str) -> list[str]:
    return skus_laid_out(layout, 2, "src")


async def test_line_without_location_goes_to_the_lowest_priority_location(
    client: httpx.AsyncClient,
) -> None:
    await seed(
        client,
        {("sku-1", "dc"): 5, ("sku-1", "store-a"): 5, ("sku-1", "store-b"): 5},
        locations={"dc": 30, "store-a": 10, "store-b": 20},
    )
    h = await hold(client, [{"sku": "sku-1", "quantity": 2}])
    assert lines_by_sku(h) == {"sku-1": [("store-a", 2)]}
    assert (await position(client, "sku-1", "store-a"))["held"] == 2
    assert (await position(client, "sku-1", "dc"))["held"] == 0


async def test_sourcing_skips_a_better_location_that_cannot_serve_the_line(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 1, ("sku-1", "store-a"): 2, ("sku-1", "store-b"): 9})
    h = await hold(client, [{"sku": "sku-1", "quantity": 3}])
    assert lines_by_sku(h) == {"sku-1": [("store-b", 3)]}


async def test_sourcing_follows_a_priority_change(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 5, ("sku-1", "store-a"): 5})
    await client.put("/v1/locations/store-a", json={"priority": 0, "ship": True})
    h = await hold(client, [{"sku": "sku-1", "quantity": 1}])
    assert lines_by_sku(h) == {"sku-1": [("store-a", 1)]}


async def test_sourcing_uses_only_locations_eligible_for_the_channel(
    client: httpx.AsyncClient,
) -> None:
    await seed(
        client,
        {("sku-1", "dc"): 5, ("sku-1", "store-b"): 5},
        channels={"web": ["store-b"]},
    )
    h = await hold(client, [{"sku": "sku-1", "quantity": 2}])
    assert lines_by_sku(h) == {"sku-1": [("store-b", 2)]}


async def test_sourcing_leaves_safety_stock_alone(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "store-a"): 5})
    await client.put("/v1/stock/sku-1/dc", json={"on_hand": 5, "safety_stock": 4})
    h = await hold(client, [{"sku": "sku-1", "quantity": 2}])
    assert lines_by_sku(h) == {"sku-1": [("store-a", 2)]}


@pytest.mark.parametrize("layout", LAYOUTS)
async def test_whole_hold_goes_to_one_location_that_can_serve_every_line(
    client: httpx.AsyncClient, layout: str
) -> None:
    a, b = two_skus(layout)
    # dc (best) has only `a`; store-a has both: the hold stays together at store-a.
    await seed(client, {(a, "dc"): 5, (a, "store-a"): 5, (b, "store-a"): 5, (b, "store-b"): 5})
    h = await hold(client, [{"sku": a, "quantity": 1}, {"sku": b, "quantity": 1}])
    assert lines_by_sku(h) == {a: [("store-a", 1)], b: [("store-a", 1)]}
    assert (await position(client, a, "dc"))["held"] == 0


@pytest.mark.parametrize("layout", LAYOUTS)
async def test_no_single_location_for_the_whole_hold_is_409_without_allow_split(
    client: httpx.AsyncClient, layout: str
) -> None:
    a, b = two_skus(layout)
    await seed(client, {(a, "dc"): 5, (b, "store-a"): 5})
    before = await snapshot(client, [a, b])
    r = await client.post(
        "/v1/holds",
        json={"channel": "web", "lines": [{"sku": a, "quantity": 2}, {"sku": b, "quantity": 2}]},
    )
    body = assert_problem(r, 409, "insufficient_stock")
    assert body["lines"], "the problem names the lines that could not be served"
    for line in body["lines"]:
        assert {"sku", "requested", "available"} <= line.keys()
    assert await snapshot(client, [a, b]) == before


@pytest.mark.parametrize("layout", LAYOUTS)
async def test_no_single_location_with_allow_split_sources_each_line_where_it_is(
    client: httpx.AsyncClient, layout: str
) -> None:
    a, b = two_skus(layout)
    await seed(client, {(a, "dc"): 5, (b, "store-a"): 5})
    h = await hold(client, [{"sku": a, "quantity": 2}, {"sku": b, "quantity": 2}], allow_split=True)
    assert lines_by_sku(h) == {a: [("dc", 2)], b: [("store-a", 2)]}


async def test_line_bigger_than_any_location_is_409_without_allow_split(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 3, ("sku-1", "store-a"): 2, ("sku-1", "store-b"): 4})
    before = await snapshot(client, ["sku-1"])
    r = await client.post(
        "/v1/holds", json={"channel": "web", "lines": [{"sku": "sku-1", "quantity": 5}]}
    )
    body = assert_problem(r, 409, "insufficient_stock")
    assert [(x["sku"], x["requested"]) for x in body["lines"]] == [("sku-1", 5)]
    assert body["lines"][0]["available"] < 5
    assert await snapshot(client, ["sku-1"]) == before


async def test_allow_split_spreads_a_line_over_locations_once_per_location(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 3, ("sku-1", "store-a"): 2, ("sku-1", "store-b"): 4})
    h = await hold(client, [{"sku": "sku-1", "quantity": 7}], allow_split=True)
    assert lines_by_sku(h) == {"sku-1": [("dc", 3), ("store-a", 2), ("store-b", 2)]}
    assert sum(line["quantity"] for line in h["lines"]) == 7
    assert (await position(client, "sku-1", "dc"))["held"] == 3
    assert (await position(client, "sku-1", "store-a"))["held"] == 2
    assert (await position(client, "sku-1", "store-b"))["held"] == 2
    got = (await client.get(f"/v1/holds/{h['id']}")).json()
    assert lines_by_sku(got) == lines_by_sku(h)


async def test_allow_split_still_prefers_one_location_when_one_can_serve(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 3, ("sku-1", "store-a"): 9})
    h = await hold(client, [{"sku": "sku-1", "quantity": 5}], allow_split=True)
    assert lines_by_sku(h) == {"sku-1": [("store-a", 5)]}


async def test_allow_split_is_409_when_every_location_together_is_short(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 3, ("sku-1", "store-a"): 2})
    before = await snapshot(client, ["sku-1"])
    r = await client.post(
        "/v1/holds",
        json={"channel": "web", "allow_split": True, "lines": [{"sku": "sku-1", "quantity": 6}]},
    )
    body = assert_problem(r, 409, "insufficient_stock")
    assert [(x["sku"], x["requested"], x["available"]) for x in body["lines"]] == [("sku-1", 6, 5)]
    assert await snapshot(client, ["sku-1"]) == before


async def test_split_hold_released_returns_units_to_every_location(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 3, ("sku-1", "store-a"): 2})
    h = await hold(client, [{"sku": "sku-1", "quantity": 5}], allow_split=True)
    assert (await client.post(f"/v1/holds/{h['id']}/release")).status_code == 200
    assert (await position(client, "sku-1", "dc"))["available"] == 3
    assert (await position(client, "sku-1", "store-a"))["available"] == 2


async def test_pinned_location_is_honoured_over_a_better_one(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 5, ("sku-1", "store-b"): 5})
    h = await hold(client, [{"sku": "sku-1", "quantity": 2, "location": "store-b"}])
    assert lines_by_sku(h) == {"sku-1": [("store-b", 2)]}
    assert (await position(client, "sku-1", "dc"))["held"] == 0


async def test_pinned_location_short_is_409_even_if_another_location_has_stock(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 5, ("sku-1", "store-b"): 1})
    before = await snapshot(client, ["sku-1"])
    r = await client.post(
        "/v1/holds",
        json={"channel": "web", "lines": [{"sku": "sku-1", "quantity": 2, "location": "store-b"}]},
    )
    body = assert_problem(r, 409, "insufficient_stock")
    (line,) = body["lines"]
    assert (line["sku"], line["requested"], line["available"]) == ("sku-1", 2, 1)
    assert await snapshot(client, ["sku-1"]) == before


@pytest.mark.parametrize("layout", LAYOUTS)
async def test_pinned_and_sourced_lines_mix_in_one_hold(
    client: httpx.AsyncClient, layout: str
) -> None:
    a, b = two_skus(layout)
    await seed(client, {(a, "store-b"): 5, (b, "dc"): 5, (b, "store-b"): 5})
    h = await hold(
        client, [{"sku": a, "quantity": 1, "location": "store-b"}, {"sku": b, "quantity": 1}]
    )
    assert lines_by_sku(h)[a] == [("store-b", 1)]
    assert len(lines_by_sku(h)[b]) == 1


async def test_pinned_location_not_eligible_for_the_channel_is_422_and_reserves_nothing(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 5, ("sku-1", "store-b"): 5}, channels={"web": ["dc"]})
    before = await snapshot(client, ["sku-1"])
    r = await client.post(
        "/v1/holds",
        json={"channel": "web", "lines": [{"sku": "sku-1", "quantity": 1, "location": "store-b"}]},
    )
    assert_problem(r, 422, "invalid_request")
    assert await snapshot(client, ["sku-1"]) == before
    assert (await position(client, "sku-1", "store-b"))["held"] == 0


@pytest.mark.parametrize("layout", LAYOUTS)
async def test_allow_split_splits_only_the_line_that_needs_it(
    client: httpx.AsyncClient, layout: str
) -> None:
    a, b = two_skus(layout)
    await seed(client, {(a, "dc"): 2, (a, "store-a"): 2, (b, "store-a"): 5})
    h = await hold(client, [{"sku": a, "quantity": 3}, {"sku": b, "quantity": 4}], allow_split=True)
    assert lines_by_sku(h) == {a: [("dc", 2), ("store-a", 1)], b: [("store-a", 4)]}
    assert (await position(client, a, "dc"))["held"] == 2
    assert (await position(client, a, "store-a"))["held"] == 1
    assert (await position(client, b, "store-a"))["held"] == 4


@pytest.mark.parametrize("layout", LAYOUTS)
async def test_allow_split_keeps_a_multi_sku_hold_together_when_one_location_can(
    client: httpx.AsyncClient, layout: str
) -> None:
    a, b = two_skus(layout)
    await seed(client, {(a, "dc"): 5, (a, "store-b"): 5, (b, "store-b"): 5, (b, "store-a"): 5})
    h = await hold(client, [{"sku": a, "quantity": 1}, {"sku": b, "quantity": 1}], allow_split=True)
    assert lines_by_sku(h) == {a: [("store-b", 1)], b: [("store-b", 1)]}
