"""Scripts as functions on a cluster (app/store/scripts.py, app/store/cluster.py): an FCALL is
routed by its declared keys without asking the server for them, and a primary that lacks the
library (flushed, or a node that joined empty) gets it on the first call, which its replica
then has too (functions replicate, unlike SCRIPT LOAD)."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from app import keys
from app.store import calls
from app.store.calls import Script
from app.store.scripts import Scripts, library

pytestmark = [pytest.mark.cluster]

SKU = "FN-CLUSTER-1"


def availability_call() -> calls.Call:
    return calls.availability(keys.partition_of(SKU), [SKU], ["dc-1"])


async def test_a_script_call_is_routed_by_its_keys_without_asking_the_server(
    redis: Redis,
) -> None:
    cluster: RedisCluster = redis  # type: ignore[assignment]
    scripts = Scripts.register(redis)
    await scripts.run(availability_call())  # loads the library where it is missing
    await cluster.config_resetstat(target_nodes=RedisCluster.ALL_NODES)
    for _ in range(5):
        await scripts.run(availability_call())
    stats = await cluster.info("commandstats", target_nodes=RedisCluster.ALL_NODES)
    assert sum(s.get("cmdstat_fcall", {}).get("calls", 0) for s in stats.values()) == 5
    assert not any("cmdstat_command|getkeys" in s for s in stats.values())


async def test_a_primary_without_the_library_gets_it_and_its_replica_follows(
    redis: Redis,
) -> None:
    cluster: RedisCluster = redis  # type: ignore[assignment]
    scripts = Scripts.register(redis)
    await cluster.execute_command("FUNCTION", "FLUSH", target_nodes=RedisCluster.PRIMARIES)
    assert (await scripts.run(availability_call()))[0] == []
    name = library(Script.AVAILABILITY.value).name
    primary = cluster.get_node_from_key(keys.tag(keys.partition_of(SKU)))
    replicas = [
        n for n in cluster.get_replicas() if n.name in _replicas_of(cluster, primary.name)
    ] or cluster.get_replicas()
    deadline = time.monotonic() + 10
    while True:
        listed = [
            await cluster.execute_command("FUNCTION", "LIST", "LIBRARYNAME", name, target_nodes=n)
            for n in [primary, *replicas]
        ]
        if all(listed[:1]) and any(listed[1:]):
            return
        assert time.monotonic() < deadline, listed
        await asyncio.sleep(0.1)


def _replicas_of(cluster: RedisCluster, primary: str) -> set[str]:
    slots = cluster.nodes_manager.slots_cache
    out: set[str] = set()
    for nodes in slots.values():
        if nodes and nodes[0].name == primary:
            out |= {n.name for n in nodes[1:]}
    return out
