"""Every event's per-channel availability before and after equals what the API answered just
before and just after the change (safety stock, lapsed holds and negative on_hand included)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
from redis.asyncio import Redis

from app import keys
from app.domain.clock import ManualClock
from tests.conftest import seed

SKU = "fig-1"
CHANNELS = {"web": ["dc", "store-a", "store-b"], "pickup": ["store-a", "store-b"]}
# Channels with rules (docs/architecture.md "Channel rules"): their figures move differently.
RULES: dict[str, dict[str, Any]] = {
    "market": {"locations": ["dc", "store-a", "store-b"], "buffer": {"units": 3}},
    "outlet": {"locations": ["dc", "store-a"], "buffer": {"percent": 30}},
    "hidden": {"locations": ["dc", "store-a", "store-b"], "exclude_skus": [SKU]},
}


async def channel_figures(client: httpx.AsyncClient) -> dict[str, tuple[int, str]]:
    out = {}
    for channel in [*CHANNELS, *RULES]:
        body = (await client.get(f"/v1/availability/{SKU}", params={"channel": channel})).json()
        out[channel] = (body["available"], body["status"])
    return out


async def test_event_channel_figures_match_the_api_before_and_after_each_change(
    client: httpx.AsyncClient, redis: Redis, clock: ManualClock
) -> None:
    await seed(
        client, {(SKU, "dc"): 6, (SKU, "store-a"): 3, (SKU, "store-b"): 1}, channels=CHANNELS
    )
    for channel, body in RULES.items():
        r = await client.put(f"/v1/channels/{channel}", json={"low_stock_threshold": 2, **body})
        assert r.status_code == 200, r.text
    stream = keys.events(keys.partition_of(SKU))
    lapsing = await client.post(
        "/v1/holds",
        json={"ttl_seconds": 1, "lines": [{"sku": SKU, "quantity": 2, "location": "store-a"}]},
    )
    clock.advance(2)  # a lapsed hold the reaper has not seen: it must not count
    holds: list[str] = []

    async def hold(location: str, quantity: int) -> None:
        r = await client.post(
            "/v1/holds", json={"lines": [{"sku": SKU, "quantity": quantity, "location": location}]}
        )
        assert r.status_code == 201, r.text
        holds.append(r.json()["id"])

    async def put(location: str, on_hand: int, safety: int | None = None) -> None:
        body: dict[str, Any] = {"on_hand": on_hand}
        if safety is not None:
            body["safety_stock"] = safety
        assert (await client.put(f"/v1/stock/{SKU}/{location}", json=body)).status_code == 200

    async def sale(location: str, quantity: int, event_id: str) -> None:
        event = {
            "id": event_id,
            "type": "sale",
            "sku": SKU,
            "location": location,
            "quantity": quantity,
        }
        assert (await client.post("/v1/stock/events", json={"events": [event]})).status_code == 200

    async def transition(action: str, index: int) -> None:
        assert (await client.post(f"/v1/holds/{holds[index]}/{action}")).status_code == 200

    steps: list[Callable[[], Awaitable[None]]] = [
        lambda: hold("store-a", 1),
        lambda: put("store-b", 4, safety=2),
        lambda: hold("dc", 5),
        lambda: transition("commit", 1),
        lambda: sale("store-a", 4, "s-1"),  # on_hand below held: available clamps at 0
        lambda: transition("release", 0),
        lambda: put("dc", 0),
        lambda: transition("fulfil", 1),
        lambda: put("store-a", 9),
        lambda: sale("store-b", 1, "s-2"),
    ]
    assert lapsing.status_code == 201
    moved: set[str] = set()
    for step in steps:
        before = await channel_figures(client)
        last: Any = (await redis.xrevrange(stream, count=1) or [("0-0", {})])[0][0]
        await step()
        after = await channel_figures(client)
        new = [f for _, f in await redis.xrange(stream, min=f"({last}") if f["type"] != "shortfall"]
        assert len(new) == 1, new
        reported = {c["channel"]: c for c in orjson.loads(new[0].get("channels", "[]"))}
        for channel in [*CHANNELS, *RULES]:
            if before[channel] == after[channel]:
                assert channel not in reported
            else:
                c = reported[channel]
                assert (c["available_before"], c["status_before"]) == before[channel]
                assert (c["available_after"], c["status_after"]) == after[channel]
                moved.add(channel)
    assert moved == {"web", "pickup", "market", "outlet"}  # an excluded sku never moves
