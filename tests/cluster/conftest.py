"""Fixtures of the cluster tests; the one cluster implementation is tests/cluster/support.py's
LocalCluster.

- The central fixtures (tests/conftest.py: `store_url`, `settings`, `app`, `client`, `redis`)
  run every test of this package on the session's cluster (`store_cluster`: 3 primaries + 3
  replicas, AOF), flushed before each test.
- `cluster_with_replicas`: a cluster of the module's own, for tests that kill or pause nodes;
  `no_replica_cluster` (and `cluster_url`, its first node): 3 primaries, no replica.
- `serve_on_cluster`: a real `omnistock serve` on a cluster (SSE does not stream through
  httpx's ASGI transport)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.crc import key_slot

from app import keys
from app.store.embedded import free_port
from tests.cluster.support import SLOTS, LocalCluster
from tests.conftest import ServiceProcess, service_env


def serve_on_cluster(url: str, log_path: Path, **env: str) -> ServiceProcess:
    """A real `omnistock serve` on the cluster at `url` (started; stop() it)."""
    values = {
        "OMNISTOCK_REDIS_URL": url,
        "OMNISTOCK_REDIS_CLUSTER": "1",
        "OMNISTOCK_REAPER_ENABLED": "false",
        "OMNISTOCK_SSE_KEEPALIVE_SECONDS": "0.5",
        **env,
    }
    service = ServiceProcess(service_env(**values), free_port(), log_path)
    try:
        service.wait_ready()
    except BaseException:
        service.stop()
        raise
    return service


def skus_on_different_nodes(prefix: str = "c", per_node: int = 1) -> list[str]:
    """Skus whose partitions hash to slots owned by different primaries (by slot range),
    `per_node` of them on each node (in distinct partitions), node 0's first."""
    chosen: dict[int, list[str]] = {0: [], 1: [], 2: []}
    partitions: set[int] = set()
    for i in range(100_000):
        sku = f"{prefix}-{i}"
        p = keys.partition_of(sku)
        node = node_of_partition(p)
        if p in partitions or len(chosen[node]) >= per_node:
            continue
        partitions.add(p)
        chosen[node].append(sku)
        if all(len(v) == per_node for v in chosen.values()):
            break
    return [sku for node in range(3) for sku in chosen[node]]


def node_of_partition(p: int) -> int:
    slot = key_slot(keys.tag(p).encode())
    return min(slot // (SLOTS // 3), 2)


@pytest.fixture(scope="module")
def cluster_with_replicas(
    server_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    """3 primaries with one replica each, AOF on, one per test module; tests that kill a node
    restore it."""
    with local_cluster(server_binary, tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def no_replica_cluster(
    server_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    """3 primaries without replicas, one per test module: for tests that pause a primary
    (which, with a replica, would fail over) or need no replica and want the speed."""
    with local_cluster(server_binary, tmp_path_factory.mktemp("cluster"), replicas=0) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def cluster_url(no_replica_cluster: LocalCluster) -> str:
    """The first node of `no_replica_cluster` (not flushed between tests)."""
    return no_replica_cluster.nodes[0].url


@contextlib.contextmanager
def local_cluster(binary: str, base: Path, **options: Any) -> Iterator[LocalCluster]:
    """A started LocalCluster (`options`: primaries, replicas, node_env...), stopped after."""
    cluster = LocalCluster(binary, base, **options)
    try:
        yield cluster.start()
    finally:
        cluster.stop()
