"""A local Valkey cluster for tests: the processes, the topology and the health check come from
benchmarks/cluster.py (shared with the bench); the faults (kill, pause, restart, failover) are
the tests' own."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
from redis.crc import key_slot

from app import keys
from app.api.main import create_app
from app.settings import Settings
from benchmarks import cluster as shared
from benchmarks.cluster import SLOTS, ClusterError, Node, wait_until

__all__ = ["SLOTS", "ClusterError", "LocalCluster", "Node", "serving", "wait_until"]


def omnistock_cli(seeds: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`omnistock <args>` as a subprocess on the cluster whose nodes `seeds` names."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNISTOCK_")}
    env.update(OMNISTOCK_REDIS_URL=seeds, OMNISTOCK_REDIS_CLUSTER="1")
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@asynccontextmanager
async def serving(url: str, **settings: object) -> AsyncIterator[httpx.AsyncClient]:
    """The app in process on the cluster `url` (seeds), reaper off; `client.app` is the app."""
    app = create_app(Settings(redis_url=url, redis_cluster=True, reaper_enabled=False, **settings))  # type: ignore[arg-type]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cluster") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@dataclass
class LocalCluster(shared.LocalCluster):
    """3 primaries with 1 replica each by default, AOF everysec; see benchmarks/cluster.py."""

    _first_slots: dict[int, int] = field(default_factory=dict)  # of killed primaries

    # -- faults ----------------------------------------------------------------------------

    def skus_by_primary(self, per_primary: int, prefix: str = "sku") -> list[list[str]]:
        """`per_primary` skus on each primary (in the order of primary_nodes()), every sku in
        a partition of its own."""
        table = self._slots()
        heads = [node.port for node in self.primary_nodes()]
        chosen: dict[int, list[str]] = {port: [] for port in heads}
        partitions: set[int] = set()
        for i in range(100_000):
            sku = f"{prefix}-{i}"
            p = keys.partition_of(sku)
            port = self.primary_for_slot(key_slot(keys.tag(p).encode()), table).port
            if p in partitions or len(chosen[port]) >= per_primary:
                continue
            partitions.add(p)
            chosen[port].append(sku)
            if all(len(skus) == per_primary for skus in chosen.values()):
                return [chosen[port] for port in heads]
        raise ClusterError(f"not {per_primary} partitions on every primary")

    def kill(self, node: Node) -> None:
        """SIGKILL: no AOF flush, no goodbye to the cluster."""
        assert node.proc is not None
        if node.port not in self._first_slots:
            with contextlib.suppress(ClusterError):
                self._first_slots[node.port] = self._first_slot_of(node)
        if node.paused:
            os.kill(node.proc.pid, signal.SIGCONT)
        node.proc.kill()
        node.proc.wait(10)

    def pause(self, node: Node) -> None:
        """SIGSTOP: the node neither answers nor replicates until resume()."""
        assert node.proc is not None
        os.kill(node.proc.pid, signal.SIGSTOP)
        node.paused = True

    def resume(self, node: Node) -> None:
        assert node.proc is not None
        os.kill(node.proc.pid, signal.SIGCONT)
        node.paused = False

    def cut_replica_links(self, primary: Node) -> None:
        """Drop the primary's replication links: with the replica paused first, what the
        primary acknowledges next never reaches it (a lagging replica)."""
        primary.call("CLIENT", "KILL", "TYPE", "replica")

    def restart(self, node: Node, timeout: float = 30.0) -> None:
        """Start a killed node again from its directory (nodes.conf, AOF): it rejoins, as a
        replica if its slots were taken over meanwhile; waits until the cluster is healthy."""
        assert not node.alive
        self._spawn(node)
        wait_until(lambda: node.call("PING") is not None, 10, f"node {node.port} to restart")
        self.wait_healthy(timeout)

    def wait_for_failover(self, old: Node, timeout: float = 30.0) -> Node:
        """The replica that took over `old`'s slots, once every live node agrees."""
        slot = self._first_slots.pop(old.port, None)
        if slot is None:
            slot = self._first_slot_of(old)
        wait_until(
            lambda: (
                self.primary_for_slot(slot).port != old.port
                and all(n.cluster_info()["cluster_state"] == "ok" for n in self.live())
            ),
            timeout,
            f"a replica of {old.port} to take over",
        )
        return self.primary_for_slot(slot)

    def _first_slot_of(self, node: Node) -> int:
        for start, _, head, *_ in self._slots():
            if int(head[1]) == node.port:  # type: ignore[index]
                return int(start)  # type: ignore[call-overload]
        raise ClusterError(f"node {node.port} owns no slot")
