"""A real 3-primary Valkey cluster (no replicas, no AOF) for the tests of this package, and a
real `omnistock serve` on it (SSE does not stream through httpx's ASGI transport)."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from fastapi import FastAPI

from app import keys
from app.api.main import create_app
from app.domain.clock import ManualClock
from app.settings import Settings
from app.store.embedded import free_port
from tests.cluster.support import LocalCluster
from tests.conftest import ServiceProcess, service_env

SLOTS = 16384


@contextlib.contextmanager
def running_cluster(
    server_binary: str, base: Path, node_env: dict[int, dict[str, str]] | None = None
) -> Iterator[list[int]]:
    """Three primaries sharing the slots in three equal ranges; the ports, node 0 first.
    `node_env` adds environment variables to a node's process (e.g. libfaketime)."""
    # The cluster bus listens on --cluster-port; by default port + 10000, which is no valid
    # port for a free port above 55535, so give it its own free port.
    ports = [free_port() for _ in range(3)]
    bus_ports = [free_port() for _ in range(3)]
    procs = []
    for i, (port, bus_port) in enumerate(zip(ports, bus_ports, strict=True)):
        node_dir = Path(base / str(port))
        node_dir.mkdir()
        procs.append(
            subprocess.Popen(
                [
                    server_binary,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    str(bus_port),
                    "--cluster-config-file",
                    "nodes.conf",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(node_dir),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={**service_env(), **(node_env or {}).get(i, {})},
            )
        )
    clients = [redis.Redis(port=port) for port in ports]
    try:
        for client in clients:
            for _ in range(100):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
        share = SLOTS // 3
        for i, client in enumerate(clients):
            end = SLOTS - 1 if i == 2 else (i + 1) * share - 1
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", i * share, end)
        for port, bus_port in zip(ports[1:], bus_ports[1:], strict=True):
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", port, bus_port)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            infos = [c.execute_command("CLUSTER", "INFO") for c in clients]
            if all(
                b"cluster_state:ok" in (i if isinstance(i, bytes) else i.encode()) for i in infos
            ):
                break
            time.sleep(0.1)
        else:
            pytest.fail("cluster did not converge")
        time.sleep(0.5)
        yield ports
    finally:
        for client in clients:
            client.close()
        for proc in procs:
            proc.terminate()
            proc.wait(10)


@pytest.fixture(scope="module")
def cluster_url(server_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_cluster(server_binary, tmp_path_factory.mktemp("cluster")) as ports:
        yield f"redis://127.0.0.1:{ports[0]}/0"


def flush_cluster(url: str) -> None:
    flusher = redis.RedisCluster.from_url(url)
    flusher.flushall(target_nodes=redis.RedisCluster.PRIMARIES)
    flusher.close()


@pytest.fixture
async def cluster_app(cluster_url: str) -> AsyncIterator[tuple[FastAPI, ManualClock]]:
    flush_cluster(cluster_url)
    clock = ManualClock()
    application = create_app(
        Settings(redis_url=cluster_url, redis_cluster=True, reaper_enabled=False), clock
    )
    async with application.router.lifespan_context(application):
        yield application, clock


@pytest.fixture
async def cluster_client(
    cluster_app: tuple[FastAPI, ManualClock],
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=cluster_app[0])
    async with httpx.AsyncClient(transport=transport, base_url="http://cluster") as client:
        yield client


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
    slot = redis.cluster.key_slot(keys.tag(p).encode())
    return min(slot // (SLOTS // 3), 2)


@pytest.fixture(scope="module")
def cluster_with_replicas(
    server_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    """3 primaries with one replica each, AOF on (tests/cluster/support.py), one per test
    module; tests that kill a node restore it."""
    cluster = LocalCluster(server_binary, tmp_path_factory.mktemp("cluster"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()
