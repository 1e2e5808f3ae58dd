"""Location coordinates: validated, and kept in the store's geo index with the records."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from app import keys
from tests.api.helpers import assert_problem
from tests.nearby.helpers import put_location


async def test_a_location_keeps_its_coordinates(client: httpx.AsyncClient) -> None:
    r = await put_location(client, "store-1", geo={"lat": 48.8566, "lon": 2.3522})
    assert r.status_code == 200, r.text
    assert r.json()["geo"] == {"lat": 48.8566, "lon": 2.3522}
    listed = (await client.get("/v1/locations")).json()["locations"]
    assert listed[0]["geo"] == {"lat": 48.8566, "lon": 2.3522}


@pytest.mark.parametrize(
    "geo",
    [
        {"lat": 90.1, "lon": 0},
        {"lat": -91, "lon": 0},
        {"lat": 0, "lon": 180.5},
        {"lat": 0, "lon": -181},
        {"lat": "48.8", "lon": 2.3},
        {"lat": None, "lon": 2.3},
        {"lat": True, "lon": 2.3},
        {"lat": 48.8},
        {"lat": 48.8, "lon": 2.3, "alt": 10},
        "48.8,2.3",
    ],
)
async def test_bad_coordinates_are_refused_and_change_nothing(
    client: httpx.AsyncClient, redis: Redis, geo: Any
) -> None:
    assert (await put_location(client, "store-1", geo={"lat": 1, "lon": 2})).status_code == 200
    before = await redis.geopos(keys.GEO, "store-1")
    r = await put_location(client, "store-1", name="changed", geo=geo)
    assert_problem(r, 422, "invalid_request")
    listed = (await client.get("/v1/locations")).json()["locations"]
    assert listed[0]["name"] == "" and listed[0]["geo"] == {"lat": 1, "lon": 2}
    assert await redis.geopos(keys.GEO, "store-1") == before


async def test_non_finite_coordinates_are_refused(client: httpx.AsyncClient) -> None:
    r = await client.put(
        "/v1/locations/store-1",
        content=b'{"geo": {"lat": NaN, "lon": 1}}',
        headers={"content-type": "application/json"},
    )
    assert_problem(r, 422, "invalid_request")


async def test_the_geo_index_follows_moves_and_removals(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    await put_location(client, "a", geo={"lat": 48.0, "lon": 2.0})
    await put_location(client, "b", geo={"lat": 45.0, "lon": 5.0})
    await put_location(client, "c")
    assert sorted(await redis.zrange(keys.GEO, 0, -1)) == ["a", "b"]
    await put_location(client, "a", geo={"lat": 10.0, "lon": 20.0})  # moved
    found: Any = await redis.geopos(keys.GEO, "a")
    ((lon, lat),) = found
    assert lat == pytest.approx(10.0, abs=1e-5) and lon == pytest.approx(20.0, abs=1e-5)
    await put_location(client, "b")  # lost its coordinates
    assert await redis.zrange(keys.GEO, 0, -1) == ["a"]


async def test_a_polar_location_is_saved_and_left_out_of_the_store_geo_index(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    # GEOADD refuses |lat| > 85.05112878 (Web Mercator); the API takes any valid latitude
    # (found by the fuzzer: the script wrote the location, then failed on GEOADD with a 500).
    await put_location(client, "north", geo={"lat": 10.0, "lon": 20.0})
    r = await put_location(client, "north", geo={"lat": 89.5, "lon": 20.0})
    assert r.status_code == 200, r.text
    assert r.json()["geo"] == {"lat": 89.5, "lon": 20.0}
    assert await redis.zrange(keys.GEO, 0, -1) == []
