"""Locations and channels: PUT registers or updates, GET lists."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from fastapi import FastAPI

from tests.api.helpers import assert_problem, available, channels_by_id
from tests.conftest import seed

NO_RULES: dict[str, Any] = {"buffer": None, "exclude_skus": []}  # a channel without channel rules


async def test_put_location_registers_it_and_returns_it(client: httpx.AsyncClient) -> None:
    body = {"type": "dc", "name": "Main DC", "ship": True, "pickup": False, "priority": 3}
    r = await client.put("/v1/locations/dc-1", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {**body, "id": "dc-1"}


async def test_get_locations_lists_registered_locations_with_every_field(
    client: httpx.AsyncClient,
) -> None:
    body = {"type": "store", "name": "High St", "ship": False, "pickup": True, "priority": 7}
    assert (await client.put("/v1/locations/store-9", json=body)).status_code == 200
    r = await client.get("/v1/locations")
    assert r.status_code == 200
    assert r.json() == {"locations": [{**body, "id": "store-9"}]}


async def test_put_location_with_defaults_only_is_accepted(client: httpx.AsyncClient) -> None:
    r = await client.put("/v1/locations/minimal", json={})
    assert r.status_code == 200, r.text
    saved = r.json()
    assert saved["id"] == "minimal"
    assert {"type", "name", "ship", "pickup", "priority"} <= saved.keys()


async def test_put_location_again_updates_it(client: httpx.AsyncClient) -> None:
    await client.put("/v1/locations/dc", json={"type": "dc", "priority": 5, "ship": True})
    r = await client.put(
        "/v1/locations/dc", json={"type": "warehouse", "priority": 1, "name": "renamed"}
    )
    assert r.status_code == 200
    listed = (await client.get("/v1/locations")).json()["locations"]
    assert len(listed) == 1
    assert listed[0]["type"] == "warehouse"
    assert listed[0]["priority"] == 1
    assert listed[0]["name"] == "renamed"


async def test_locations_are_listed_lowest_priority_first(client: httpx.AsyncClient) -> None:
    for loc, priority in (("b", 30), ("a", 20), ("c", 10)):
        await client.put(f"/v1/locations/{loc}", json={"priority": priority})
    listed = (await client.get("/v1/locations")).json()["locations"]
    assert [loc["id"] for loc in listed] == ["c", "a", "b"]


async def test_put_location_with_unknown_type_is_422(client: httpx.AsyncClient) -> None:
    r = await client.put("/v1/locations/x", json={"type": "spaceship"})
    assert_problem(r, 422, "invalid_request")
    assert (await client.get("/v1/locations")).json() == {"locations": []}


async def test_put_channel_registers_it_and_returns_it(client: httpx.AsyncClient) -> None:
    await seed(client, channels={"pos": ["store-a"]})
    r = await client.put("/v1/channels/web", json={"locations": ["dc"], "low_stock_threshold": 4})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "id": "web",
        "locations": ["dc"],
        "low_stock_threshold": 4,
        **NO_RULES,
    }


async def test_get_channels_lists_registered_channels(client: httpx.AsyncClient) -> None:
    await seed(client, channels={"web": ["dc", "store-a"], "pos-a": ["store-a"]})
    r = await client.get("/v1/channels")
    assert r.status_code == 200
    by_id = {c["id"]: c for c in r.json()["channels"]}
    assert by_id == {
        "web": {"id": "web", "locations": ["dc", "store-a"], "low_stock_threshold": 2, **NO_RULES},
        "pos-a": {"id": "pos-a", "locations": ["store-a"], "low_stock_threshold": 2, **NO_RULES},
    }


async def test_put_channel_again_updates_locations_and_threshold(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, channels={"web": ["dc"]})
    r = await client.put(
        "/v1/channels/web", json={"locations": ["store-a", "store-b"], "low_stock_threshold": 9}
    )
    assert r.status_code == 200
    web = (await channels_by_id(client))["web"]
    assert web["locations"] == ["store-a", "store-b"]
    assert web["low_stock_threshold"] == 9


async def test_channel_update_changes_what_its_availability_sums(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 5, ("sku-1", "store-a"): 7}, channels={"web": ["dc"]})
    assert await available(client, "sku-1") == 5
    await client.put("/v1/channels/web", json={"locations": ["dc", "store-a"]})
    assert await available(client, "sku-1") == 12


async def test_channel_referencing_unknown_location_is_422_and_is_not_saved(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, channels={"pos": ["store-a"]})
    r = await client.put("/v1/channels/web", json={"locations": ["dc", "nowhere"]})
    body = assert_problem(r, 422, "invalid_request")
    assert "nowhere" in str(body)
    assert "web" not in await channels_by_id(client)


async def test_channel_update_referencing_unknown_location_keeps_the_old_channel(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, channels={"web": ["dc"]})
    r = await client.put("/v1/channels/web", json={"locations": ["nowhere"]})
    assert_problem(r, 422, "invalid_request")
    web = (await channels_by_id(client))["web"]
    assert web["locations"] == ["dc"]


async def test_channel_with_negative_low_stock_threshold_is_422(client: httpx.AsyncClient) -> None:
    await seed(client, channels={"pos": ["store-a"]})
    r = await client.put("/v1/channels/web", json={"locations": ["dc"], "low_stock_threshold": -1})
    assert_problem(r, 422, "invalid_request")


async def test_channel_without_locations_field_is_422(client: httpx.AsyncClient) -> None:
    r = await client.put("/v1/channels/web", json={"low_stock_threshold": 1})
    assert_problem(r, 422, "invalid_request")


async def test_channel_with_a_repeated_location_counts_it_once(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 5}, channels={"web": ["dc", "dc"]})
    assert (await channels_by_id(client))["web"]["locations"] == ["dc"]
    assert await available(client, "sku-1") == 5


async def test_the_scripts_channel_argument_follows_a_channel_change(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    config = app.state.services.config
    await seed(client, channels={"web": ["dc"]})
    assert orjson.loads(config.channels_arg(["dc"])) == {"web": [2, ["dc"]]}
    await client.put("/v1/channels/web", json={"locations": ["dc"], "low_stock_threshold": 9})
    await client.put("/v1/channels/pos", json={"locations": ["dc", "store-a"]})
    assert orjson.loads(config.channels_arg(["dc"])) == {
        "web": [9, ["dc"]],
        "pos": [5, ["dc", "store-a"]],
    }


async def test_the_scripts_channel_argument_carries_the_exclusions_of_the_skus_asked(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    config = app.state.services.config
    await seed(client, channels={"web": ["dc"]})
    r = await client.put("/v1/channels/web", json={"locations": ["dc"], "exclude_skus": ["sku-x"]})
    assert r.status_code == 200, r.text
    assert orjson.loads(config.channels_arg(["dc"], ["sku-y"])) == {"web": [5, ["dc"]]}
    assert orjson.loads(config.channels_arg(["dc"], ["sku-x"])) == {
        "web": [5, ["dc"], {"x": {"sku-x": True}}]
    }
