"""OMNISTOCK_WAIT_REPLICAS on a cluster: the WAIT goes to the primary of the change's slot, on
the connection that made the change (redis-py's cluster client would send a bare WAIT to a
default node, where it proves nothing).

This cluster has no replicas (the `cluster_url` fixture), so only the refusal and the routing
are shown here; the failover tests on a cluster with replicas (tests/cluster/test_failover*.py)
show that with N=1 killing a primary loses no acknowledged hold.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import redis

from app import keys
from app.api.main import create_app
from app.domain.clock import ManualClock
from app.settings import Settings
from tests.conftest import seed

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


@asynccontextmanager
async def service(url: str, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(redis_url=url, redis_cluster=True, reaper_enabled=False, **overrides)
    app = create_app(settings, ManualClock())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://c") as c:
            yield c


async def test_on_a_cluster_the_wait_runs_on_the_primary_of_the_changes_slot(
    cluster_url: str,
) -> None:
    admin = redis.RedisCluster.from_url(cluster_url, decode_responses=True)
    try:
        admin.flushall(target_nodes=redis.RedisCluster.PRIMARIES)
        admin.config_resetstat(target_nodes=redis.RedisCluster.PRIMARIES)
        async with service(cluster_url) as c:  # seeding waits for nothing
            await seed(c, {("W", "dc"): 5})
        async with service(
            cluster_url, wait_replicas=1, redis_timeout_seconds=1, request_deadline_seconds=1.25
        ) as c:
            body = {"channel": "web", "lines": [{"sku": "W", "quantity": 1}]}
            r = await c.post("/v1/holds", json=body, headers={"Idempotency-Key": "w-1"})
        assert r.status_code == 503, r.text
        assert "1 replica(s) did not acknowledge the change" in r.json()["detail"]
        owner = admin.get_node_from_key(keys.tag(keys.partition_of("W")))
        assert owner is not None
        calls = {}
        for node in admin.get_primaries():
            stats = admin.info("commandstats", target_nodes=node).get("cmdstat_wait")
            calls[node.name] = int(stats["calls"]) if stats else 0
        assert calls.pop(owner.name) == 1
        assert set(calls.values()) == {0}
    finally:
        admin.close()
