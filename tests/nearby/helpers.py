"""Stores around Paris, a haversine of the tests' own, and seeding through the HTTP API."""

from __future__ import annotations

import math
from typing import Any

import httpx

HERE = (48.8566, 2.3522)  # the customer, at the till of store-1
STORES: dict[str, tuple[float, float]] = {
    "store-1": (48.8566, 2.3522),  # 0 km
    "store-2": (48.8738, 2.2950),  # ~4.6 km
    "store-3": (48.8000, 2.1300),  # ~17 km
    "store-7": (48.9000, 2.4500),  # ~8.5 km
    "lyon": (45.7640, 4.8357),  # ~390 km
}


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance on a sphere of the mean Earth radius."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


async def put_location(client: httpx.AsyncClient, loc: str, **body: Any) -> httpx.Response:
    return await client.put(f"/v1/locations/{loc}", json={"ship": True, "pickup": True, **body})


async def seed_stores(
    client: httpx.AsyncClient,
    stock: dict[tuple[str, str], int],
    priorities: dict[str, int] | None = None,
) -> None:
    """Every store of STORES with its coordinates, a `pos` channel seeing them all, a `dc`
    without coordinates, and the positions given."""
    for loc, (lat, lon) in STORES.items():
        prio = (priorities or {}).get(loc, 10)
        r = await put_location(
            client, loc, name=loc.title(), priority=prio, geo={"lat": lat, "lon": lon}
        )
        assert r.status_code == 200, r.text
    r = await put_location(client, "dc", name="DC", priority=1, type="dc")
    assert r.status_code == 200, r.text
    r = await client.put("/v1/channels/pos", json={"locations": [*STORES, "dc"]})
    assert r.status_code == 200, r.text
    for (sku, loc), on_hand in stock.items():
        r = await client.put(f"/v1/stock/{sku}/{loc}", json={"on_hand": on_hand})
        assert r.status_code == 200, r.text
