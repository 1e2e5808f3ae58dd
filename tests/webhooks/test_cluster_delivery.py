"""Webhooks on a Redis/Valkey cluster: the `{wh}` keys, the lease and the fenced scripts are
single-slot, and the deliverer pages the feed in its one total order across the primaries."""

from __future__ import annotations

import httpx
import pytest
from redis.asyncio import Redis

from tests.conftest import is_cluster_url, seed
from tests.events.helpers import stream_ids, unique_skus
from tests.webhooks.receivers import Receiver, fails_half, serve
from tests.webhooks.test_delivery import changes, subscribe, until

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@pytest.fixture
def store_kind() -> str:
    return "cluster"


async def test_on_a_cluster_every_event_of_skus_on_every_primary_arrives_in_order(
    client: httpx.AsyncClient, redis: Redis, store_url: str
) -> None:
    assert is_cluster_url(store_url)
    await seed(client)
    skus = unique_skus(12)  # partitions spread over the three primaries
    async with serve(Receiver(fails_half())) as receiver:
        sub = await subscribe(client, receiver.url, skus=skus)
        for n in range(1, 6):
            for sku in skus:
                await changes(client, sku, [n])
        expected = await stream_ids(redis, skus)
        assert len(expected) == 60
        await until(lambda: len(receiver.ids()) >= len(expected), seconds=30)
        assert receiver.ids() == expected
        assert receiver.all_signed(sub["secret"])
