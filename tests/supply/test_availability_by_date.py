"""Availability with future supply: `incoming`, `next_available_at` and the timeline."""

from __future__ import annotations

import httpx
import pytest

from tests.api.helpers import assert_problem, parse_ts
from tests.conftest import seed
from tests.supply.helpers import backorder, days, ok_supply


@pytest.fixture(autouse=True)
async def _seeded(client: httpx.AsyncClient) -> None:
    await seed(
        client,
        {("sku-1", "dc"): 0, ("sku-2", "dc"): 4},
        channels={"web": ["dc", "store-a"], "pos-b": ["store-b"]},
    )


async def test_incoming_counts_unpromised_supply_in_the_channel(
    client: httpx.AsyncClient,
) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(5))
    await ok_supply(client, "sku-1", "store-b", "other", 7, days(2))
    r = await backorder(client, [{"sku": "sku-1", "quantity": 4}])
    assert r.status_code == 201, r.text
    body = (await client.get("/v1/availability/sku-1", params={"channel": "web"})).json()
    assert (body["available"], body["incoming"]) == (0, 6)


async def test_next_available_at_is_the_earliest_eta_with_units_left(
    client: httpx.AsyncClient,
) -> None:
    first, second = days(3), days(8)
    await ok_supply(client, "sku-1", "dc", "a", 2, first)
    await ok_supply(client, "sku-1", "dc", "b", 5, second)
    body = (await client.get("/v1/availability/sku-1", params={"channel": "web"})).json()
    assert body["next_available_at"][:16] == first[:16]
    await backorder(client, [{"sku": "sku-1", "quantity": 2}])
    body = (await client.get("/v1/availability/sku-1", params={"location": "dc"})).json()
    assert body["next_available_at"][:16] == second[:16]


async def test_next_available_at_is_null_while_units_are_available_now(
    client: httpx.AsyncClient,
) -> None:
    await ok_supply(client, "sku-2", "dc", "a", 2, days(3))
    body = (await client.get("/v1/availability/sku-2", params={"channel": "web"})).json()
    assert (body["available"], body["incoming"], body["next_available_at"]) == (4, 2, None)


async def test_batch_availability_carries_incoming_and_next_available_at(
    client: httpx.AsyncClient,
) -> None:
    eta = days(3)
    await ok_supply(client, "sku-1", "dc", "a", 2, eta)
    r = await client.post(
        "/v1/availability/query", json={"skus": ["sku-1", "sku-2"], "channel": "web"}
    )
    one, two = r.json()["results"]
    assert (one["incoming"], one["next_available_at"][:16]) == (2, eta[:16])
    assert (two["incoming"], two["next_available_at"]) == (0, None)


async def test_the_timeline_adds_each_supply_line_from_its_eta(
    client: httpx.AsyncClient,
) -> None:
    await ok_supply(client, "sku-2", "dc", "a", 3, days(3))
    await ok_supply(client, "sku-2", "dc", "b", 5, days(8))
    r = await client.get("/v1/availability/sku-2/timeline", params={"channel": "web"})
    assert r.status_code == 200, r.text
    windows = r.json()["windows"]
    assert [w["available"] for w in windows] == [4, 7, 12]
    assert windows[0]["to"] == windows[1]["from"]
    span = parse_ts(windows[-1]["to"]) - parse_ts(windows[0]["from"])
    assert 89 < span.total_seconds() / 86400 <= 90  # the default horizon: 90 days


async def test_the_timeline_counts_promises_against_their_supply_line(
    client: httpx.AsyncClient,
) -> None:
    await ok_supply(client, "sku-1", "dc", "a", 3, days(3))
    await ok_supply(client, "sku-1", "dc", "b", 5, days(8))
    await backorder(client, [{"sku": "sku-1", "quantity": 4}])
    r = await client.get("/v1/availability/sku-1/timeline", params={"location": "dc"})
    assert [w["available"] for w in r.json()["windows"]] == [0, 4]


async def test_the_timeline_stops_at_until(client: httpx.AsyncClient) -> None:
    await ok_supply(client, "sku-2", "dc", "b", 5, days(8))
    r = await client.get(
        "/v1/availability/sku-2/timeline", params={"channel": "web", "until": days(5)}
    )
    assert [w["available"] for w in r.json()["windows"]] == [4]


@pytest.mark.parametrize("until", [days(-1), days(400), "soon"], ids=["past", "beyond", "text"])
async def test_a_bad_until_is_422(client: httpx.AsyncClient, until: str) -> None:
    r = await client.get("/v1/availability/sku-2/timeline", params={"until": until})
    assert_problem(r, 422, "invalid_request")


async def test_the_timeline_of_an_unknown_channel_is_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/availability/sku-2/timeline", params={"channel": "nope"})
    assert_problem(r, 404, "channel_not_found")
