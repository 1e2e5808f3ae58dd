"""Per-location event identity on the session's cluster (3 primaries): the claim of
(location, id) lives in its own slot, so an id reused with a sku whose partition is on another
node is still caught."""

from __future__ import annotations

import httpx
import pytest

from tests.cluster.conftest import skus_on_different_nodes
from tests.conftest import seed

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


async def test_event_identity_is_per_location_and_checked_across_nodes(
    client: httpx.AsyncClient,
) -> None:
    skus = skus_on_different_nodes()
    await seed(client, {(s, loc): 5 for s in skus for loc in ("store-a", "store-b")})

    def sale(sku: str, location: str) -> dict[str, object]:
        return {"id": "till-1", "type": "sale", "sku": sku, "location": location, "quantity": 1}

    batch = [sale(skus[0], "store-a"), sale(skus[1], "store-b"), sale(skus[2], "store-a")]
    r = await client.post("/v1/stock/events", json={"events": batch})
    assert [(x["status"], x.get("reason")) for x in r.json()["results"]] == [
        ("applied", None),
        ("applied", None),
        ("rejected", "id_reused"),
    ]
    r = await client.post("/v1/stock/events", json={"events": batch[:2]})
    assert [x["status"] for x in r.json()["results"]] == ["duplicate", "duplicate"]
    stock = [(await client.get(f"/v1/stock/{s}")).json()["positions"] for s in skus]
    on_hand = [{p["location"]: p["on_hand"] for p in positions} for positions in stock]
    assert on_hand == [
        {"store-a": 4, "store-b": 5},
        {"store-a": 5, "store-b": 4},
        {"store-a": 5, "store-b": 5},
    ]
