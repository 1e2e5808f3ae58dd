"""Promising on the cluster: a backorder cart whose skus live on different nodes is reserved
through the two-phase path, every part by hold_backorder.lua on its own primary, all or
nothing; its promises follow the hold's transitions on every node."""

from __future__ import annotations

import httpx
import pytest

from app import keys
from app.domain.clock import ManualClock
from tests.api.helpers import act, assert_problem, position
from tests.cluster.conftest import skus_on_different_nodes
from tests.conftest import seed
from tests.supply.helpers import backorder, days, ok_supply, supply_lines

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


async def promised(client: httpx.AsyncClient, skus: list[str]) -> list[int]:
    return [(await supply_lines(client, sku))[0]["promised"] for sku in skus]


async def test_a_backorder_cart_over_three_nodes_is_promised_all_or_nothing(
    client: httpx.AsyncClient,
) -> None:
    skus = skus_on_different_nodes("bo")
    assert len({keys.partition_of(s) for s in skus}) == 3
    await seed(client, {(s, "dc"): 1 for s in skus})
    etas = [days(2 + i) for i in range(3)]
    for sku, eta in zip(skus, etas, strict=True):
        await ok_supply(client, sku, "dc", "po", 4, eta)

    cart = [{"sku": s, "quantity": q} for s, q in zip(skus, [2, 3, 9], strict=True)]
    short = await backorder(client, cart)
    body = assert_problem(short, 409, "insufficient_stock")
    assert body["lines"] == [{"sku": skus[2], "requested": 9, "available": 5}]
    assert await promised(client, skus) == [0, 0, 0]
    assert [(await position(client, s, "dc"))["held"] for s in skus] == [0, 0, 0]

    r = await backorder(client, [{"sku": s, "quantity": 3} for s in skus])
    assert r.status_code == 201, r.text
    hold = r.json()
    dated = {x["sku"]: x["available_from"][:16] for x in hold["lines"] if x.get("supply_id")}
    assert dated == {s: eta[:16] for s, eta in zip(skus, etas, strict=True)}
    assert await promised(client, skus) == [2, 2, 2]
    assert (await act(client, hold["id"], "commit")).status_code == 200

    event = {"id": "r1", "type": "receipt", "sku": skus[1], "location": "dc", "quantity": 2}
    r = await client.post("/v1/stock/events", json={"events": [{**event, "supply_id": "po"}]})
    assert r.status_code == 200, r.text
    pos = await position(client, skus[1], "dc")
    assert (pos["committed"], pos["available"]) == (3, 0)

    assert (await act(client, hold["id"], "release")).status_code == 200
    assert await promised(client, skus) == [0, 0, 0]
    assert [(await position(client, s, "dc"))["available"] for s in skus] == [1, 3, 1]


async def test_fulfilling_a_lapsed_backorder_cart_over_three_nodes_is_409_invalid_transition(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    """The home part's fulfil decides by its node's clock: the hold lapsed, so it is expired
    (every part follows), not promise_not_received for the promises of its parts."""
    skus = skus_on_different_nodes("bx")
    await seed(client, {(s, "dc"): 1 for s in skus})
    for sku in skus:
        await ok_supply(client, sku, "dc", "po", 4, days(2))
    r = await backorder(client, [{"sku": s, "quantity": 3} for s in skus], ttl_seconds=60)
    assert r.status_code == 201, r.text
    clock.advance(61)
    assert_problem(await act(client, r.json()["id"], "fulfil"), 409, "invalid_transition")
    assert (await client.get(f"/v1/holds/{r.json()['id']}")).json()["status"] == "expired"
    assert await promised(client, skus) == [0, 0, 0]
