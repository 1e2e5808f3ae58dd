"""Deliveries to real local HTTP receivers: signed, in order, every event, through failures."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from redis.asyncio import Redis

from tests.conftest import seed
from tests.events.helpers import stream_ids
from tests.webhooks.receivers import Receiver, down_url, serve


def fresh_sku() -> str:
    return f"wh-{uuid.uuid4().hex[:10]}"


async def subscribe(client: httpx.AsyncClient, url: str, **fields: Any) -> dict[str, Any]:
    """Subscribe `url`, to the log's own events (not the derived ones) unless told."""
    r = await client.post("/v1/webhooks", json={"url": url, "event_types": ["stock.*"], **fields})
    assert r.status_code == 201, r.text
    sub: dict[str, Any] = r.json()
    return sub


async def changes(client: httpx.AsyncClient, sku: str, counts: list[int]) -> None:
    for n in counts:
        # A loaded machine may answer 503 (store timeout): retry with the same key, which
        # applies the change exactly once, so the stream holds one event per change.
        key = {"Idempotency-Key": f"{sku}-{n}"}
        for _ in range(5):
            r = await client.put(f"/v1/stock/{sku}/dc", json={"on_hand": n}, headers=key)
            if r.status_code != 503:
                break
            await asyncio.sleep(0.2)
        assert r.status_code == 200, r.text


async def until(check: Callable[[], bool], seconds: float = 10) -> None:
    for _ in range(int(seconds / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    assert check(), "timed out"


async def test_every_event_is_delivered_signed_and_in_order(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    await seed(client)
    sku = fresh_sku()
    async with serve(Receiver()) as receiver:
        sub = await subscribe(client, receiver.url, event_types=["stock.*"])
        await changes(client, sku, [5, 4, 3, 9])
        expected = await stream_ids(redis, [sku])
        await until(lambda: len(receiver.ids()) >= len(expected))
        assert receiver.ids() == expected
        assert receiver.all_signed(sub["secret"])
        first = receiver.acked[0]
        assert first.headers["omnistock-event-type"] == "stock.set"
        assert first.doc["sku"] == sku


async def test_out_of_stock_and_back_in_stock_are_derived_per_channel(
    client: httpx.AsyncClient,
) -> None:
    await seed(client)
    sku = fresh_sku()
    types = ["availability.out_of_stock", "availability.back_in_stock"]
    async with serve(Receiver()) as receiver:
        await subscribe(client, receiver.url, event_types=types, skus=[sku])
        await changes(client, sku, [3, 0, 0, 2])
        await until(lambda: len(receiver.acked) >= 3)
        await asyncio.sleep(0.1)
        docs = [r.doc for r in receiver.acked]
        # A new sku starts out of stock: its first units bring it back in stock.
        assert [(d["type"], d["channel"], d["available"]) for d in docs] == [
            ("availability.back_in_stock", "web", 3),
            ("availability.out_of_stock", "web", 0),
            ("availability.back_in_stock", "web", 2),
        ]
        assert docs[1]["id"] == docs[1]["source_event"] + "/web"


async def test_a_receiver_answering_500_first_gets_every_event_in_order(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    await seed(client)
    sku = fresh_sku()
    async with serve(Receiver(lambda n: 500 if n <= 4 else 200)) as receiver:
        sub = await subscribe(client, receiver.url, skus=[sku])
        await changes(client, sku, [1, 2, 3])
        expected = await stream_ids(redis, [sku])
        await until(lambda: len(receiver.ids()) >= len(expected))
        assert receiver.ids() == expected
        r = await client.get(f"/v1/webhooks/{sub['id']}/attempts")
        attempts = r.json()["attempts"]
        failed = [a for a in attempts if a["error"]]
        assert [a["status"] for a in failed] == [500] * 4
        assert all(a["latency_ms"] >= 0 for a in attempts)
        assert (await client.get(f"/v1/webhooks/{sub['id']}")).json()["enabled"] is True


async def test_a_receiver_that_times_out_is_retried(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    await seed(client)
    sku = fresh_sku()
    async with serve(Receiver(lambda n: 1.0 if n == 1 else 200)) as receiver:
        sub = await subscribe(client, receiver.url, skus=[sku])
        await changes(client, sku, [1, 2])
        expected = await stream_ids(redis, [sku])
        await until(lambda: receiver.ids()[-1:] == expected[-1:])
        assert receiver.ids() == expected
        attempts = (await client.get(f"/v1/webhooks/{sub['id']}/attempts")).json()["attempts"]
        assert "Timeout" in attempts[-1]["error"]


async def test_a_receiver_that_is_down_disables_the_subscription_until_patched(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    await seed(client)
    sku = fresh_sku()
    sub = await subscribe(client, down_url(), skus=[sku])
    await changes(client, sku, [1, 2])

    async def state() -> dict[str, Any]:
        doc: dict[str, Any] = (await client.get(f"/v1/webhooks/{sub['id']}")).json()
        return doc

    for _ in range(250):
        if not (await state())["enabled"]:
            break
        await asyncio.sleep(0.02)
    disabled = await state()
    assert disabled["enabled"] is False
    assert "6 failed attempts" in disabled["disabled_reason"]
    attempts = (await client.get(f"/v1/webhooks/{sub['id']}/attempts")).json()["attempts"]
    assert len(attempts) == 6 and all(a["status"] is None for a in attempts)

    expected = await stream_ids(redis, [sku])
    async with serve(Receiver()) as receiver:
        r = await client.patch(
            f"/v1/webhooks/{sub['id']}", json={"url": receiver.url, "enabled": True}
        )
        assert r.status_code == 200 and r.json()["disabled_reason"] is None
        await until(lambda: len(receiver.ids()) >= len(expected))
        assert receiver.ids() == expected


async def test_redeliver_sends_again_from_the_given_event(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    await seed(client)
    sku = fresh_sku()
    async with serve(Receiver()) as receiver:
        sub = await subscribe(client, receiver.url, skus=[sku])
        await changes(client, sku, [1, 2, 3])
        expected = await stream_ids(redis, [sku])
        await until(lambda: len(receiver.acked) >= 3)
        r = await client.post(f"/v1/webhooks/{sub['id']}/redeliver", params={"from": expected[1]})
        assert r.status_code == 200, r.text
        await until(lambda: len(receiver.acked) >= 5)
        await asyncio.sleep(0.1)
        assert [x.doc["id"] for x in receiver.acked] == expected + expected[1:]


async def test_admin_api_answers_problems_for_bad_input(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/webhooks", json={"url": "ftp://x"})
    assert r.status_code == 422
    r = await client.post("/v1/webhooks", json={"url": "http://x", "secret": "short"})
    assert r.status_code == 422
    for url in ("http://[::1", "http://x:abc/", "http:///path"):
        r = await client.post("/v1/webhooks", json={"url": url})
        assert r.status_code == 422 and r.json()["code"] == "invalid_request", url
    r = await client.post("/v1/webhooks", json={"url": "http://x", "channels": ["nope"]})
    assert r.status_code == 404 and r.json()["code"] == "channel_not_found"
    r = await client.post("/v1/webhooks", json={"url": "http://x", "locations": ["nope"]})
    assert r.status_code == 404 and r.json()["code"] == "location_not_found"
    r = await client.get("/v1/webhooks/wh_0000000000000000")
    assert r.status_code == 404 and r.json()["code"] == "webhook_not_found"
    sub = await subscribe(client, "http://127.0.0.1:9/hook")
    r = await client.post(f"/v1/webhooks/{sub['id']}/redeliver", params={"from": "nope"})
    assert r.status_code == 422
    listed = (await client.get("/v1/webhooks")).json()["webhooks"]
    assert [s["id"] for s in listed] == [sub["id"]] and "secret" not in listed[0]
    assert (await client.delete(f"/v1/webhooks/{sub['id']}")).status_code == 204
    assert (await client.get(f"/v1/webhooks/{sub['id']}")).status_code == 404


async def test_out_of_stock_and_back_in_stock_follow_the_channel_rules(
    client: httpx.AsyncClient,
) -> None:
    """A buffered channel goes out of stock while units remain (its figure reaches 0); a
    channel that excludes the sku never sees it move (docs/architecture.md "Channel rules")."""
    await seed(client)
    sku = fresh_sku()
    for channel, rule in (
        ("market", {"buffer": {"units": 2}}),
        ("hidden", {"exclude_skus": [sku]}),
    ):
        r = await client.put(f"/v1/channels/{channel}", json={"locations": ["dc"], **rule})
        assert r.status_code == 200, r.text
    types = ["availability.out_of_stock", "availability.back_in_stock"]
    async with serve(Receiver()) as receiver:
        await subscribe(client, receiver.url, event_types=types, channels=["market", "hidden"])
        await changes(client, sku, [3, 2, 5, 1])
        await until(lambda: len(receiver.acked) >= 4)
        await asyncio.sleep(0.1)
        assert [(r.doc["type"], r.doc["channel"], r.doc["available"]) for r in receiver.acked] == [
            ("availability.back_in_stock", "market", 1),
            ("availability.out_of_stock", "market", 0),
            ("availability.back_in_stock", "market", 3),
            ("availability.out_of_stock", "market", 0),
        ]


async def test_a_channel_filter_leaves_out_the_skus_the_channel_excludes(
    client: httpx.AsyncClient,
) -> None:
    await seed(client)
    hidden, shown = fresh_sku(), fresh_sku()
    r = await client.put(
        "/v1/channels/hidden", json={"locations": ["dc"], "exclude_skus": [hidden]}
    )
    assert r.status_code == 200, r.text
    async with serve(Receiver()) as receiver:
        await subscribe(client, receiver.url, channels=["hidden"])
        await changes(client, hidden, [3, 4])
        await changes(client, shown, [1])  # after them in the log: delivered after them
        await until(lambda: len(receiver.acked) >= 1)
        await asyncio.sleep(0.1)
        assert [r.doc["sku"] for r in receiver.acked] == [shown]
