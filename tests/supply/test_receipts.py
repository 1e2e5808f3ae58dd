"""Receipts of supply: a `receipt` stock event with `supply_id`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_problem
from tests.conftest import seed
from tests.supply.helpers import backorder, days, ok_supply, supply_lines


@pytest.fixture(autouse=True)
async def _seeded(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 0})


async def receive(
    client: httpx.AsyncClient, event_id: str, quantity: int, supply_id: str = "po"
) -> dict[str, Any]:
    event = {
        "id": event_id,
        "type": "receipt",
        "sku": "sku-1",
        "location": "dc",
        "quantity": quantity,
        "supply_id": supply_id,
    }
    r = await client.post("/v1/stock/events", json={"events": [event]})
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()["results"][0]
    return result


async def web(client: httpx.AsyncClient) -> dict[str, Any]:
    body: dict[str, Any] = (
        await client.get("/v1/availability/sku-1", params={"channel": "web"})
    ).json()
    return body


async def test_a_receipt_moves_units_from_the_supply_line_to_on_hand(
    client: httpx.AsyncClient,
) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(5))
    result = await receive(client, "r1", 4)
    assert result["status"] == "applied"
    assert result["position"]["on_hand"] == 4
    (line,) = await supply_lines(client, "sku-1")
    assert line["quantity"] == 6
    body = await web(client)
    assert (body["available"], body["incoming"]) == (4, 6)


async def test_promised_units_become_held_units_without_a_jump_in_availability(
    client: httpx.AsyncClient,
) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(5))
    r = await backorder(client, [{"sku": "sku-1", "quantity": 6}])
    hold_id = r.json()["id"]
    before = await web(client)
    result = await receive(client, "r1", 10)
    assert result["position"] == {**result["position"], "on_hand": 10, "held": 6}
    after = await web(client)
    assert (before["available"] + before["incoming"]) == (after["available"] + after["incoming"])
    assert (after["available"], after["incoming"]) == (4, 0)
    hold = (await client.get(f"/v1/holds/{hold_id}")).json()
    assert [(x["location"], x["quantity"], x.get("supply_id")) for x in hold["lines"]] == [
        ("dc", 6, None)
    ]
    assert await supply_lines(client, "sku-1") == []


async def test_a_partial_receipt_moves_the_oldest_promises_first(
    client: httpx.AsyncClient,
) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(5))
    first = (await backorder(client, [{"sku": "sku-1", "quantity": 3}])).json()["id"]
    second = (await backorder(client, [{"sku": "sku-1", "quantity": 4}])).json()["id"]
    await receive(client, "r1", 5)
    one = (await client.get(f"/v1/holds/{first}")).json()["lines"]
    two = (await client.get(f"/v1/holds/{second}")).json()["lines"]
    assert [(x["quantity"], x.get("supply_id")) for x in one] == [(3, None)]
    assert sorted((x["quantity"], x.get("supply_id") or "") for x in two) == [(2, ""), (2, "po")]
    (line,) = await supply_lines(client, "sku-1")
    assert (line["quantity"], line["promised"]) == (5, 2)


async def test_a_receipt_larger_than_the_line_closes_it_and_keeps_the_excess(
    client: httpx.AsyncClient,
) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 5, days(5))
    result = await receive(client, "r1", 8)
    assert result["position"]["on_hand"] == 8
    assert await supply_lines(client, "sku-1") == []


async def test_a_receipt_naming_an_unknown_supply_line_is_rejected_on_its_own(
    client: httpx.AsyncClient,
) -> None:
    events = [
        {
            "id": "r1",
            "type": "receipt",
            "sku": "sku-1",
            "location": "dc",
            "quantity": 3,
            "supply_id": "nope",
        },
        {"id": "r2", "type": "receipt", "sku": "sku-1", "location": "dc", "quantity": 2},
    ]
    r = await client.post("/v1/stock/events", json={"events": events})
    one, two = r.json()["results"]
    assert (one["status"], one["reason"]) == ("rejected", "unknown supply line")
    assert two["status"] == "applied"
    assert two["position"]["on_hand"] == 2


async def test_a_supply_id_on_another_event_type_is_rejected(client: httpx.AsyncClient) -> None:
    event = {
        "id": "s1",
        "type": "sale",
        "sku": "sku-1",
        "location": "dc",
        "quantity": 1,
        "supply_id": "po",
    }
    r = await client.post("/v1/stock/events", json={"events": [event]})
    assert r.json()["results"][0]["status"] == "rejected"


async def test_a_replayed_receipt_is_a_duplicate(client: httpx.AsyncClient) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(5))
    await receive(client, "r1", 4)
    again = await receive(client, "r1", 4)
    assert again["status"] == "duplicate"
    assert again["position"]["on_hand"] == 4
    assert (await supply_lines(client, "sku-1"))[0]["quantity"] == 6


async def test_a_received_hold_can_be_committed_and_fulfilled(client: httpx.AsyncClient) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(5))
    hold_id = (await backorder(client, [{"sku": "sku-1", "quantity": 6}])).json()["id"]
    assert (await client.post(f"/v1/holds/{hold_id}/commit")).status_code == 200
    assert_problem(await client.post(f"/v1/holds/{hold_id}/fulfil"), 409, "promise_not_received")
    await receive(client, "r1", 10)
    r = await client.post(f"/v1/holds/{hold_id}/fulfil")
    assert r.status_code == 200, r.text
    (pos,) = (await client.get("/v1/stock/sku-1")).json()["positions"]
    assert (pos["on_hand"], pos["held"], pos["committed"]) == (4, 0, 0)


async def test_a_received_active_hold_released_returns_its_units(
    client: httpx.AsyncClient,
) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(5))
    hold_id = (await backorder(client, [{"sku": "sku-1", "quantity": 6}])).json()["id"]
    await receive(client, "r1", 4)
    assert (await client.post(f"/v1/holds/{hold_id}/release")).status_code == 200
    (pos,) = (await client.get("/v1/stock/sku-1")).json()["positions"]
    assert (pos["on_hand"], pos["held"]) == (4, 0)
    assert (await supply_lines(client, "sku-1"))[0]["promised"] == 0


async def test_releasing_every_on_hand_line_keeps_a_hold_with_promises_open(
    client: httpx.AsyncClient,
) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(5))
    await client.put("/v1/stock/sku-1/dc", json={"on_hand": 2})
    hold_id = (await backorder(client, [{"sku": "sku-1", "quantity": 5}])).json()["id"]
    r = await client.post(
        f"/v1/holds/{hold_id}/release",
        json={"lines": [{"sku": "sku-1", "location": "dc", "quantity": 2}]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active"
    assert (await supply_lines(client, "sku-1"))[0]["promised"] == 3
