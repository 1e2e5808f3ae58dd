from __future__ import annotations

import httpx

from tests.conftest import seed


async def test_hold_reserves_units_and_availability_drops(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    r = await client.post(
        "/v1/holds", json={"channel": "web", "lines": [{"sku": "sku-1", "quantity": 2}]}
    )
    assert r.status_code == 201, r.text
    a = await client.get("/v1/availability/sku-1", params={"channel": "web"})
    assert a.json()["available"] == 3
