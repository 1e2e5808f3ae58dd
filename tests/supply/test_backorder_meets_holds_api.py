"""Backorder holds with the features next to them: channel rules (a buffer keeps on-hand units
back, an excluded sku gets nothing), the holds API (metadata, GET /v1/holds) and partial
release of a promised line (docs/architecture.md "Future supply and promising")."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from app import keys
from app.domain.audit import Auditor
from app.domain.clock import ManualClock
from app.store.scripts import Scripts
from tests.api.helpers import act, assert_problem, position
from tests.conftest import seed
from tests.supply.helpers import backorder, days, ok_supply, supply_lines


@pytest.fixture(autouse=True)
async def _seeded(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 3})


async def web_rules(client: httpx.AsyncClient, **rules: Any) -> None:
    body = {"locations": ["dc", "store-a", "store-b"], "low_stock_threshold": 2, **rules}
    r = await client.put("/v1/channels/web", json=body)
    assert r.status_code == 200, r.text


def on_hand(hold: dict[str, Any]) -> list[tuple[str, int]]:
    return [(x["location"], x["quantity"]) for x in hold["lines"] if not x.get("supply_id")]


def promised(hold: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in x.items() if k != "available_from"}
        for x in hold["lines"]
        if x.get("supply_id")
    ]


async def promised_units(client: httpx.AsyncClient) -> int:
    return sum(line["promised"] for line in await supply_lines(client, "sku-1"))


async def made(client: httpx.AsyncClient, quantity: int, **extra: Any) -> dict[str, Any]:
    r = await backorder(client, [{"sku": "sku-1", "quantity": quantity}], **extra)
    assert r.status_code == 201, r.text
    hold: dict[str, Any] = r.json()
    return hold


def promise_line(quantity: int, supply_id: str = "po") -> dict[str, Any]:
    return {"sku": "sku-1", "location": "dc", "quantity": quantity, "supply_id": supply_id}


# -- channel rules ---------------------------------------------------------------------------


async def test_a_unit_buffer_keeps_on_hand_units_back_and_supply_fills_the_rest(
    client: httpx.AsyncClient,
) -> None:
    await web_rules(client, buffer={"units": 2})
    await ok_supply(client, "sku-1", "dc", "po", 10, days(2))
    hold = await made(client, 4)
    assert on_hand(hold) == [("dc", 1)]  # 3 on hand, 2 kept back
    assert promised(hold) == [{"sku": "sku-1", "location": "dc", "quantity": 3, "supply_id": "po"}]
    assert (await position(client, "sku-1", "dc"))["held"] == 1


async def test_a_percent_buffer_applies_to_on_hand_units_not_to_promised_ones(
    client: httpx.AsyncClient,
) -> None:
    await web_rules(client, buffer={"percent": 50})
    await ok_supply(client, "sku-1", "dc", "po", 4, days(2))
    hold = await made(client, 5)  # 50 % of 3 on hand keeps 2 back; all 4 incoming promisable
    assert on_hand(hold) == [("dc", 1)]
    assert await promised_units(client) == 4


async def test_a_buffered_backorder_hold_short_of_supply_reports_the_channels_figure(
    client: httpx.AsyncClient,
) -> None:
    await web_rules(client, buffer={"units": 1})
    r = await backorder(client, [{"sku": "sku-1", "quantity": 3}])
    body = assert_problem(r, 409, "insufficient_stock")
    assert body["lines"][0]["available"] == 2
    assert (await position(client, "sku-1", "dc"))["held"] == 0


async def test_an_excluded_sku_is_409_with_available_0_and_nothing_is_promised(
    client: httpx.AsyncClient,
) -> None:
    await web_rules(client, exclude_skus=["sku-1"])
    await ok_supply(client, "sku-1", "dc", "po", 10, days(2))
    r = await backorder(client, [{"sku": "sku-1", "quantity": 1}])
    body = assert_problem(r, 409, "insufficient_stock")
    assert body["lines"] == [{"sku": "sku-1", "requested": 1, "available": 0}]
    assert await promised_units(client) == 0
    assert (await position(client, "sku-1", "dc"))["held"] == 0


# -- holds API -------------------------------------------------------------------------------


async def test_a_backorder_hold_keeps_its_metadata(client: httpx.AsyncClient) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(2))
    hold = await made(client, 5, metadata={"order": "A-1"})
    assert hold["metadata"] == {"order": "A-1"}
    r = await client.get(f"/v1/holds/{hold['id']}")
    assert r.json()["metadata"] == {"order": "A-1"}


async def test_a_backorder_hold_is_listed_as_get_shows_it(client: httpx.AsyncClient) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(2))
    hold = await made(client, 5, reference="cart-9")
    r = await client.get("/v1/holds", params={"reference": "cart-9"})
    assert r.status_code == 200, r.text
    assert r.json()["data"] == [(await client.get(f"/v1/holds/{hold['id']}")).json()]


# -- partial release of a promised line --------------------------------------------------------


async def test_partial_release_of_a_promised_line_returns_its_units_to_the_supply_line(
    client: httpx.AsyncClient,
) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(2))
    hold = await made(client, 8)  # 3 on hand, 5 promised
    r = await act(client, hold["id"], "release", json={"lines": [promise_line(2)]})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active"
    assert promised(r.json()) == [{**promise_line(5), "released": 2}]
    assert on_hand(r.json()) == [("dc", 3)]
    assert await promised_units(client) == 3
    assert (await position(client, "sku-1", "dc"))["held"] == 3


async def test_a_whole_release_after_a_partial_one_returns_the_remaining_promise(
    client: httpx.AsyncClient,
) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(2))
    hold = await made(client, 8)
    r = await act(client, hold["id"], "release", json={"lines": [promise_line(2)]})
    assert r.status_code == 200, r.text
    assert await promised_units(client) == 3
    r = await act(client, hold["id"], "release")
    assert r.status_code == 200, r.text
    assert await promised_units(client) == 0


async def test_releasing_every_open_unit_on_hand_and_promised_closes_the_hold(
    client: httpx.AsyncClient,
) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(2))
    hold = await made(client, 8)
    lines = [{"sku": "sku-1", "location": "dc", "quantity": 3}, promise_line(5)]
    r = await act(client, hold["id"], "release", json={"lines": lines})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "released"
    assert await promised_units(client) == 0
    assert (await position(client, "sku-1", "dc"))["held"] == 0


async def test_a_hold_whose_promised_line_is_released_whole_keeps_its_on_hand_units(
    client: httpx.AsyncClient,
) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(2))
    hold = await made(client, 8)
    r = await act(client, hold["id"], "release", json={"lines": [promise_line(5)]})
    assert r.json()["status"] == "active"
    assert promised(r.json()) == [{**promise_line(5), "released": 5}]
    # No promise left: the hold can now be fulfilled like any other.
    assert (await act(client, hold["id"], "commit")).status_code == 200
    assert (await act(client, hold["id"], "fulfil")).json()["status"] == "fulfilled"


async def test_more_promised_units_than_open_is_409_and_nothing_changes(
    client: httpx.AsyncClient,
) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(2))
    hold = await made(client, 8)
    r = await act(client, hold["id"], "release", json={"lines": [promise_line(6)]})
    body = assert_problem(r, 409, "line_quantity_exceeded")
    assert body["open"] == 5
    assert await promised_units(client) == 5


async def test_a_supply_id_the_hold_has_no_promise_on_is_422(client: httpx.AsyncClient) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(2))
    hold = await made(client, 8)
    r = await act(client, hold["id"], "release", json={"lines": [promise_line(1, "other")]})
    assert_problem(r, 422, "unknown_hold_line")
    assert await promised_units(client) == 5


async def test_partial_fulfil_of_a_promised_line_is_409_promise_not_received(
    client: httpx.AsyncClient,
) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(2))
    hold = await made(client, 8)
    assert (await act(client, hold["id"], "commit")).status_code == 200
    r = await act(client, hold["id"], "fulfil", json={"lines": [promise_line(1)]})
    assert_problem(r, 409, "promise_not_received")
    assert await promised_units(client) == 5


async def test_partial_fulfil_of_a_promised_line_is_refused_whatever_the_store_clock_says(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    """The refusal is about the request (a promised line never ships as such), not the hold's
    state: a hold lapsed by the store's clock gets it too (app/domain/backorder.py
    check_line_op), and is expired all the same."""
    await ok_supply(client, "sku-1", "dc", "po", 10, days(2))
    hold = await made(client, 8, ttl_seconds=60)
    clock.advance(61)
    r = await act(client, hold["id"], "fulfil", json={"lines": [promise_line(1)]})
    assert_problem(r, 409, "promise_not_received")
    assert (await client.get(f"/v1/holds/{hold['id']}")).json()["status"] == "expired"
    assert await promised_units(client) == 0


async def test_a_receipt_after_a_partial_release_moves_only_the_promise_left_into_the_hold(
    client: httpx.AsyncClient,
) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(2))
    hold = await made(client, 8)
    await act(client, hold["id"], "release", json={"lines": [promise_line(2)]})
    receipt = {"id": "r1", "type": "receipt", "sku": "sku-1", "location": "dc", "quantity": 10}
    r = await client.post("/v1/stock/events", json={"events": [{**receipt, "supply_id": "po"}]})
    assert r.json()["results"][0]["status"] == "applied", r.text
    after = (await client.get(f"/v1/holds/{hold['id']}")).json()
    assert on_hand(after) == [("dc", 6)]  # 3 on hand at creation + the 3 still promised
    assert (await position(client, "sku-1", "dc"))["held"] == 6


async def test_the_audit_finds_a_partially_released_promise_consistent(
    client: httpx.AsyncClient, redis: Redis, clock: ManualClock
) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(2))
    hold = await made(client, 8)
    r = await act(client, hold["id"], "release", json={"lines": [promise_line(2)]})
    assert r.status_code == 200, r.text
    auditor = Auditor(redis, Scripts.register(redis), clock, parts_grace=0.2)
    report = await auditor.audit([keys.partition_of("sku-1")])
    assert report.clean, report.as_dict()
