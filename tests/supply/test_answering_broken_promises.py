"""A channel answers `promise_broken` by releasing the units that lost their backing (a partial
release of the promised line): the units still backed stay promised to the hold, and the
receipt of the line brings them in (found by tests/model/test_supply_machine.py)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.helpers import act
from tests.conftest import seed
from tests.supply.helpers import backorder, days, ok_supply, supply_lines


@pytest.fixture
async def broken_hold(client: httpx.AsyncClient) -> str:
    """A hold promised 5 units of `po`, which then shrank to 2: 3 units lost their backing."""
    await seed(client, {("sku-1", "dc"): 0})
    await ok_supply(client, "sku-1", "dc", "po", 5, days(2))
    r = await backorder(client, [{"sku": "sku-1", "quantity": 5}])
    assert r.status_code == 201, r.text
    hold_id: str = r.json()["id"]
    changed = await ok_supply(client, "sku-1", "dc", "po", 2, days(2))
    assert changed["broken_promises"] == [{"hold": hold_id, "units": 3}]
    return hold_id


def release_promised(quantity: int) -> dict[str, Any]:
    return {"lines": [{"sku": "sku-1", "location": "dc", "quantity": quantity, "supply_id": "po"}]}


async def test_releasing_the_lost_units_keeps_the_backed_ones_promised(
    client: httpx.AsyncClient, broken_hold: str
) -> None:
    r = await act(client, broken_hold, "release", json=release_promised(3))
    assert r.status_code == 200, r.text
    (line,) = await supply_lines(client, "sku-1")
    assert (line["quantity"], line["promised"], line["incoming"]) == (2, 2, 0)


async def test_the_receipt_after_the_answer_brings_the_kept_units_into_the_hold(
    client: httpx.AsyncClient, broken_hold: str
) -> None:
    await act(client, broken_hold, "release", json=release_promised(3))
    receipt = {"id": "r1", "type": "receipt", "sku": "sku-1", "location": "dc", "quantity": 2}
    r = await client.post("/v1/stock/events", json={"events": [{**receipt, "supply_id": "po"}]})
    assert r.json()["results"][0]["status"] == "applied", r.text
    assert (await act(client, broken_hold, "commit")).status_code == 200
    r = await act(client, broken_hold, "fulfil")
    assert r.status_code == 200, r.text  # nothing left waiting
    assert [(x["location"], x["quantity"]) for x in r.json()["lines"] if "supply_id" not in x] == [
        ("dc", 2)
    ]


async def test_releasing_backed_units_of_an_unbroken_promise_frees_them_as_before(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 0})
    await ok_supply(client, "sku-1", "dc", "po", 5, days(2))
    r = await backorder(client, [{"sku": "sku-1", "quantity": 4}])
    await act(client, r.json()["id"], "release", json=release_promised(3))
    (line,) = await supply_lines(client, "sku-1")
    assert (line["promised"], line["incoming"]) == (1, 4)
