"""kill -9 of the workers of a real 2-worker `omnistock serve` while they deliver webhooks:
uvicorn starts new workers, one takes the lease once the dead one's lapses, and delivery
resumes at the first unacknowledged event: nothing lost, nothing reordered."""

from __future__ import annotations

import os
import signal
import time
import uuid
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tests.events.helpers import stream_ids
from tests.faults.test_worker_kill import worker_pids
from tests.webhooks.receivers import Receiver, serve
from tests.webhooks.test_delivery import until

pytestmark = [pytest.mark.slow, pytest.mark.fault]


async def test_killed_workers_deliver_on_from_the_stored_cursor(
    store_url: str, redis: Redis, start_service: Any
) -> None:
    service = start_service(
        OMNISTOCK_REDIS_URL=store_url,
        OMNISTOCK_WORKERS="2",
        OMNISTOCK_WEBHOOK_LEASE_SECONDS="1",
        OMNISTOCK_WEBHOOK_RETRY_INITIAL_SECONDS="0.01",
        OMNISTOCK_WEBHOOK_RETRY_MAX_SECONDS="0.05",
    )
    sku = f"wh-{uuid.uuid4().hex[:10]}"
    async with (
        httpx.AsyncClient(base_url=service.base_url, timeout=10) as api,
        serve(Receiver(lambda n: 0.03)) as receiver,  # slow: the kill lands mid-delivery
    ):
        assert (await api.put("/v1/locations/dc", json={"priority": 1})).status_code == 200
        r = await api.post("/v1/webhooks", json={"url": receiver.url, "skus": [sku]})
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]
        for n in range(60):
            assert (await api.put(f"/v1/stock/{sku}/dc", json={"on_hand": n})).status_code == 200
        await until(lambda: len(receiver.acked) >= 10)
        workers = worker_pids(service.proc.pid)
        assert len(workers) == 2, workers
        for pid in workers:  # the one delivering is among them
            os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        count_at_kill = len(receiver.acked)
        await until(lambda: len(receiver.acked) > count_at_kill + 1, seconds=30)
        resumed_after = time.monotonic() - killed_at
        expected = await stream_ids(redis, [sku])
        await until(lambda: len(receiver.ids()) >= len(expected), seconds=30)
        got = [x.doc["id"] for x in receiver.acked]
        assert receiver.ids() == expected  # first arrivals: every event, in order
        assert got == sorted(got, key=expected.index)  # a repeat only of the one in flight
        assert len(got) - len(expected) <= 1
        assert receiver.all_signed(secret)
        print(f"delivery resumed {resumed_after:.1f} s after the kill")
