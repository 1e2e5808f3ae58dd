"""Broken promises: cancelling, reducing or delaying supply that backs holds names them in a
`promise_broken` event, in the same atomic step."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import seed
from tests.supply.helpers import backorder, days, ok_supply, put_supply, supply_lines


@pytest.fixture(autouse=True)
async def _seeded(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 0})


async def hold_of(client: httpx.AsyncClient, quantity: int, **extra: Any) -> str:
    r = await backorder(client, [{"sku": "sku-1", "quantity": quantity}], **extra)
    assert r.status_code == 201, r.text
    hold_id: str = r.json()["id"]
    return hold_id


async def broken_events(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    r = await client.get("/v1/events/log", params={"sku": "sku-1"})
    return [e for e in r.json()["events"] if e["type"] == "promise_broken"]


async def test_cancelling_supply_breaks_every_promise_on_it(client: httpx.AsyncClient) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(5))
    first, second = await hold_of(client, 4), await hold_of(client, 3)
    r = await client.delete("/v1/supply/sku-1/dc/po")
    assert r.status_code == 200, r.text
    broken = {(x["hold"], x["units"]) for x in r.json()["broken_promises"]}
    assert broken == {(first, 4), (second, 3)}
    (event,) = await broken_events(client)
    assert {(x["hold"], x["units"]) for x in event["broken"]} == broken
    assert sorted(event["holds"]) == sorted([first, second])
    assert event["supply"]["supply_id"] == "po"


async def test_reducing_supply_breaks_the_newest_promises_first(
    client: httpx.AsyncClient,
) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(5))
    first, second = await hold_of(client, 4), await hold_of(client, 3)
    body = await ok_supply(client, "sku-1", "dc", "po", 5, days(5))
    assert body["broken_promises"] == [{"hold": second, "units": 2}]
    assert body["promised"] == 5
    (line,) = await supply_lines(client, "sku-1")
    assert (line["promised"], line["incoming"]) == (5, 0)
    assert first  # kept whole


async def test_delaying_supply_past_needed_by_breaks_that_promise(
    client: httpx.AsyncClient,
) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(5))
    strict = await hold_of(client, 4, needed_by=days(7))
    relaxed = await hold_of(client, 3)
    body = await ok_supply(client, "sku-1", "dc", "po", 10, days(9))
    assert body["broken_promises"] == [{"hold": strict, "units": 4}]
    assert (await supply_lines(client, "sku-1"))[0]["promised"] == 3
    assert relaxed


async def test_a_change_that_keeps_every_promise_breaks_none(client: httpx.AsyncClient) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(5))
    await hold_of(client, 4, needed_by=days(7))
    body = await ok_supply(client, "sku-1", "dc", "po", 6, days(6))
    assert body["broken_promises"] == []
    assert await broken_events(client) == []


async def test_a_released_hold_whose_promise_broke_releases_cleanly(
    client: httpx.AsyncClient,
) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(5))
    hold = await hold_of(client, 4)
    await put_supply(client, "sku-1", "dc", "po", 0)
    r = await client.post(f"/v1/holds/{hold}/release")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "released"
