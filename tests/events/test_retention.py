"""A resume point whose events were trimmed from the streams gets a reset, even when it is
younger than the retention (trimming follows the writers' clocks)."""

from __future__ import annotations

import httpx
import pytest
from redis.asyncio import Redis

from app import keys
from app.settings import Settings
from tests.conftest import make_settings, seed
from tests.events.helpers import unique_skus


@pytest.fixture
def settings(store_url: str) -> Settings:
    return make_settings(store_url, event_retention_seconds=60)


async def test_trimmed_past_the_cursor_resets(client: httpx.AsyncClient, redis: Redis) -> None:
    await seed(client)
    (sku,) = unique_skus(1)
    for i in range(3):
        r = await client.put(f"/v1/stock/{sku}/dc", json={"on_hand": i})
        assert r.status_code == 200
    first, second, third = (await client.get("/v1/events/log")).json()["events"]
    stream = keys.events(keys.partition_of(sku))
    third_sid = third["id"].rsplit("-", 1)[0]

    # Only what is before the cursor was trimmed: nothing is missing.
    await redis.xtrim(stream, minid=second["id"].rsplit("-", 1)[0], approximate=False)
    r = await client.get("/v1/events/log", params={"after": second["id"]})
    assert [e["id"] for e in r.json()["events"]] == [third["id"]]

    # The second event, after the first's cursor, is gone: reset.
    await redis.xtrim(stream, minid=third_sid, approximate=False)
    r = await client.get("/v1/events/log", params={"after": first["id"]})
    (reset,) = r.json()["events"]
    assert reset["type"] == "reset" and reset["reason"] == "trimmed"

    # An entry deleted after the cursor: reset too.
    await redis.xdel(stream, third_sid)
    r = await client.get("/v1/events/log", params={"after": second["id"]})
    assert r.json()["events"][0]["type"] == "reset"
