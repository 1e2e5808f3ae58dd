"""GET /v1/events/log: pages in global order across partitions, filters, cursors."""

from __future__ import annotations

import httpx
import pytest
from redis.asyncio import Redis

from app import keys
from app.events.ids import EventId
from tests.conftest import seed
from tests.events.helpers import event_key, read_log, stream_ids, unique_skus


async def put(client: httpx.AsyncClient, sku: str, location: str, on_hand: int) -> None:
    r = await client.put(f"/v1/stock/{sku}/{location}", json={"on_hand": on_hand})
    assert r.status_code == 200, r.text


async def test_pages_in_global_order_across_partitions(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    await seed(client)
    skus = unique_skus(6)
    assert len({keys.partition_of(s) for s in skus}) == 6
    written: dict[tuple[str, str], list[int]] = {}
    for rnd in range(5):
        for i, sku in enumerate(skus):
            for loc in ("dc", "store-a"):
                value = rnd * 100 + i
                await put(client, sku, loc, value)
                written.setdefault((sku, loc), []).append(value)

    for limit in (1, 7, 1000):
        events, _ = await read_log(client, limit=limit)
        ids = [e["id"] for e in events]
        assert ids == await stream_ids(redis)  # every event, once, in global order
        assert len(ids) == 60  # exactly one per change
        assert [event_key(i) for i in ids] == sorted(event_key(i) for i in ids)

    # Per position, the events carry the positions in the order they were written.
    seen: dict[tuple[str, str], list[int]] = {}
    for e in events:
        assert e["type"] == "stock.set" and e["cause"] == {"type": "set"}
        seen.setdefault((e["sku"], e["location"]), []).append(e["position"]["on_hand"])
    assert seen == written
    sample = events[0]
    assert set(sample) >= {"id", "type", "sku", "location", "at", "cause", "position"}
    assert sample["at"].endswith("Z")
    assert isinstance(sample["availability"], list)


async def test_filters(client: httpx.AsyncClient, redis: Redis) -> None:
    await seed(client, channels={"web": ["dc", "store-a", "store-b"], "pickup": ["store-b"]})
    a, b = unique_skus(2)
    for sku in (a, b):
        for loc in ("dc", "store-a", "store-b"):
            await put(client, sku, loc, 5)

    by_sku, _ = await read_log(client, limit=2, sku=a)
    assert [e["id"] for e in by_sku] == await stream_ids(redis, [a])
    assert {e["sku"] for e in by_sku} == {a} and len(by_sku) == 3

    by_loc, _ = await read_log(client, limit=2, location="store-a")
    assert {(e["sku"], e["location"]) for e in by_loc} == {(a, "store-a"), (b, "store-a")}

    by_channel, _ = await read_log(client, channel="pickup")
    assert [e["location"] for e in by_channel] == ["store-b", "store-b"]

    both, _ = await read_log(client, sku=b, location="dc")
    assert [(e["sku"], e["location"]) for e in both] == [(b, "dc")]

    r = await client.get("/v1/events/log", params={"channel": "nope"})
    assert r.status_code == 404 and r.json()["code"] == "channel_not_found"
    r = await client.get("/v1/events/log", params={"location": "nope"})
    assert r.status_code == 404 and r.json()["code"] == "location_not_found"


async def test_next_cursor_and_resume(client: httpx.AsyncClient) -> None:
    await seed(client)
    (sku,) = unique_skus(1)
    r = await client.get("/v1/events/log")
    assert r.json()["events"] == []
    start = r.json()["next"]  # a cursor even on an empty log
    event_key(start)

    await put(client, sku, "dc", 1)
    await put(client, sku, "dc", 2)
    r = await client.get("/v1/events/log", params={"after": start})
    first, second = r.json()["events"]
    assert r.json()["next"] == second["id"]

    r = await client.get("/v1/events/log", params={"after": first["id"]})
    assert [e["id"] for e in r.json()["events"]] == [second["id"]]

    # Nothing new: `next` stays where it was.
    r = await client.get("/v1/events/log", params={"after": second["id"]})
    assert r.json() == {"events": [], "next": second["id"]}

    await put(client, sku, "dc", 3)
    r = await client.get("/v1/events/log", params={"after": second["id"]})
    assert [e["position"]["on_hand"] for e in r.json()["events"]] == [3]


async def test_cursor_older_than_retention_resets(client: httpx.AsyncClient) -> None:
    await seed(client)
    (sku,) = unique_skus(1)
    await put(client, sku, "dc", 1)
    r = await client.get("/v1/events/log", params={"after": "1000-0-000"})
    assert r.status_code == 200
    body = r.json()
    (reset,) = body["events"]
    assert reset["type"] == "reset" and reset["reason"] == "cursor_expired"
    assert body["next"] == reset["id"]
    # From the reset's id: only what comes after it.
    r = await client.get("/v1/events/log", params={"after": body["next"]})
    assert r.json()["events"] == []
    await put(client, sku, "dc", 2)
    r = await client.get("/v1/events/log", params={"after": body["next"]})
    assert [e["position"]["on_hand"] for e in r.json()["events"]] == [2]


@pytest.mark.parametrize(
    "params",
    [
        {"after": "bad"},
        {"after": "1-2"},
        {"after": "1-0-256"},
        {"after": "1-0-000-1"},
        {"after": "x" * 65},
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "ten"},
        {"sku": "bad sku"},
    ],
)
async def test_bad_request_is_422(client: httpx.AsyncClient, params: dict[str, str]) -> None:
    r = await client.get("/v1/events/log", params=params)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "invalid_request"


async def test_limit_bounds(client: httpx.AsyncClient) -> None:
    await seed(client)
    (sku,) = unique_skus(1)
    for i in range(3):
        await put(client, sku, "dc", i)
    assert len((await client.get("/v1/events/log", params={"limit": 1000})).json()["events"]) == 3
    assert len((await client.get("/v1/events/log")).json()["events"]) == 3
    assert len((await client.get("/v1/events/log", params={"limit": 2})).json()["events"]) == 2


def test_event_id_sentinel_is_a_cursor() -> None:
    assert str(EventId.before(10)) == "9-18446744073709551615-255"
