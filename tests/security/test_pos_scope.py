"""A POS key (`pos:<location>`) sends stock events for its own location only: an event for
any other location is `rejected` on its own and changes nothing; the rest of the batch
applies."""

from __future__ import annotations

import httpx
from redis.asyncio import Redis

from tests.api.helpers import positions
from tests.conftest import seed
from tests.security.conftest import bearer
from tests.security.test_auth_matrix import store_state


def sale(event_id: str, location: str, sku: str = "sku-1") -> dict[str, object]:
    return {"id": event_id, "type": "sale", "sku": sku, "location": location, "quantity": 1}


async def test_pos_key_events_for_another_location_are_rejected_one_by_one(
    client: httpx.AsyncClient, admin: httpx.AsyncClient, api_keys: dict[str, str]
) -> None:
    await seed(admin, {("sku-1", "store-a"): 5, ("sku-1", "store-b"): 5})
    r = await client.post(
        "/v1/stock/events",
        json={"events": [sale("a-1", "store-a"), sale("b-1", "store-b"), sale("a-2", "store-a")]},
        headers=bearer(api_keys["pos:store-a"]),
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [(x["id"], x["status"]) for x in results] == [
        ("a-1", "applied"),
        ("b-1", "rejected"),
        ("a-2", "applied"),
    ]
    assert "store-a" in results[1]["reason"]
    after = await positions(admin, "sku-1")
    assert (after["store-a"]["on_hand"], after["store-b"]["on_hand"]) == (3, 5)


async def test_pos_key_of_another_store_changes_nothing(
    client: httpx.AsyncClient, admin: httpx.AsyncClient, api_keys: dict[str, str], redis: Redis
) -> None:
    await seed(admin, {("sku-1", "store-a"): 5})
    before = await store_state(redis)
    events = [
        sale("a-1", "store-a"),
        {**sale("a-2", "store-a"), "type": "count", "quantity": 0},
        {**sale("a-3", "store-a"), "type": "receipt", "quantity": 100},
    ]
    r = await client.post(
        "/v1/stock/events", json={"events": events}, headers=bearer(api_keys["pos:store-b"])
    )
    assert r.status_code == 200, r.text
    assert {x["status"] for x in r.json()["results"]} == {"rejected"}
    assert await store_state(redis) == before


async def test_rejected_foreign_event_id_stays_free_for_its_own_store(
    client: httpx.AsyncClient, admin: httpx.AsyncClient, api_keys: dict[str, str]
) -> None:
    """A rejected event is not remembered as seen: store-a's own till may still send it."""
    await seed(admin, {("sku-1", "store-a"): 5})
    event = {"events": [sale("a-1", "store-a")]}
    wrong = await client.post(
        "/v1/stock/events", json=event, headers=bearer(api_keys["pos:store-b"])
    )
    assert wrong.json()["results"][0]["status"] == "rejected"
    right = await client.post(
        "/v1/stock/events", json=event, headers=bearer(api_keys["pos:store-a"])
    )
    assert right.json()["results"][0]["status"] == "applied"
    assert (await positions(admin, "sku-1"))["store-a"]["on_hand"] == 4


async def test_admin_key_sends_events_for_any_location(
    admin: httpx.AsyncClient,
) -> None:
    await seed(admin, {("sku-1", "store-a"): 5, ("sku-1", "store-b"): 5})
    r = await admin.post(
        "/v1/stock/events", json={"events": [sale("a-1", "store-a"), sale("b-1", "store-b")]}
    )
    assert [x["status"] for x in r.json()["results"]] == ["applied", "applied"]


async def test_a_store_cannot_suppress_another_stores_sale_by_sending_its_event_id_first(
    client: httpx.AsyncClient, admin: httpx.AsyncClient, api_keys: dict[str, str]
) -> None:
    """Event ids are unique per location: store-a sending the id store-b's till will use next
    is store-a's own event; store-b's sale with that id still applies."""
    await seed(admin, {("sku-1", "store-a"): 5, ("sku-1", "store-b"): 5})
    for scope in ("pos:store-a", "pos:store-b"):
        location = scope.removeprefix("pos:")
        r = await client.post(
            "/v1/stock/events",
            json={"events": [sale("till-3:000187", location)]},
            headers=bearer(api_keys[scope]),
        )
        assert [x["status"] for x in r.json()["results"]] == ["applied"], (scope, r.text)
    after = await positions(admin, "sku-1")
    assert (after["store-a"]["on_hand"], after["store-b"]["on_hand"]) == (4, 4)
