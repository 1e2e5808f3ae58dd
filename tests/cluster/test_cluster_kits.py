"""Find in store on the cluster: a kit whose components live on different nodes is held
through the multi-partition path, all or nothing; nearby reads work across nodes."""

from __future__ import annotations

import httpx
import pytest

from tests.api.helpers import assert_problem, hold, lines_by_sku, position
from tests.cluster.conftest import skus_on_different_nodes
from tests.nearby.helpers import HERE, seed_stores

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


async def test_a_kit_over_three_nodes_is_held_all_or_nothing_at_one_location(
    client: httpx.AsyncClient,
) -> None:
    a, b, c = skus_on_different_nodes("kit")
    stock = {
        (a, "store-2"): 1,
        (b, "store-2"): 1,
        (c, "store-2"): 0,
        (a, "store-7"): 1,
        (b, "store-7"): 2,
        (c, "store-7"): 3,
    }
    await seed_stores(client, stock)
    r = await client.put(
        "/v1/kits/set",
        json={
            "components": [
                {"sku": a, "quantity": 1},
                {"sku": b, "quantity": 2},
                {"sku": c, "quantity": 3},
            ]
        },
    )
    assert r.status_code == 200, r.text
    h = await hold(
        client,
        [{"sku": "set", "quantity": 1}],
        channel="pos",
        ship_to={"lat": HERE[0], "lon": HERE[1]},
    )
    assert lines_by_sku(h) == {a: [("store-7", 1)], b: [("store-7", 2)], c: [("store-7", 3)]}
    again = await client.post(
        "/v1/holds",
        json={"channel": "pos", "allow_split": True, "lines": [{"sku": "set", "quantity": 1}]},
    )
    assert_problem(again, 409, "insufficient_stock")
    for sku in (a, b):  # nothing left held at store-2 by the refused hold
        assert (await position(client, sku, "store-2"))["held"] == 0
    params = {"lat": HERE[0], "lon": HERE[1], "radius_km": 25}
    r = await client.get("/v1/availability/set/nearby", params=params)
    assert r.json()["locations"] == []
    cart = {"lines": [{"sku": a, "quantity": 1}, {"sku": b, "quantity": 1}], **params}
    r = await client.post("/v1/availability/nearby", json=cart)
    assert [x["location"] for x in r.json()["locations"]] == ["store-2"]
