"""The same service on a real 3-primary Valkey cluster: every script stays in one slot."""

from __future__ import annotations

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
from tests.conftest import seed

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

SLOTS = 16384


@pytest.fixture(scope="module")
def cluster_url(server_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = tmp_path_factory.mktemp("cluster")
    # The cluster bus listens on --cluster-port; by default port + 10000, which is no valid
    # port for a free port above 55535, so give it its own free port.
    ports = [free_port() for _ in range(3)]
    bus_ports = [free_port() for _ in range(3)]
    procs = []
    for port, bus_port in zip(ports, bus_ports, strict=True):
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
        yield f"redis://127.0.0.1:{ports[0]}/0"
    finally:
        for client in clients:
            client.close()
        for proc in procs:
            proc.terminate()
            proc.wait(10)


@pytest.fixture
async def cluster_app(cluster_url: str) -> AsyncIterator[tuple[FastAPI, ManualClock]]:
    flusher = redis.RedisCluster.from_url(cluster_url)
    flusher.flushall(target_nodes=redis.RedisCluster.PRIMARIES)
    flusher.close()
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


def _skus_on_different_nodes() -> list[str]:
    """Skus whose partitions hash to slots owned by different primaries (by slot range)."""
    chosen: dict[int, str] = {}
    for i in range(2000):
        sku = f"c-{i}"
        slot = redis.cluster.key_slot(keys.tag(keys.partition_of(sku)).encode())
        chosen.setdefault(min(slot // (SLOTS // 3), 2), sku)
        if len(chosen) == 3:
            break
    return list(chosen.values())


async def test_a_cart_spanning_three_cluster_nodes_is_reserved_all_or_nothing(
    cluster_client: httpx.AsyncClient,
) -> None:
    skus = _skus_on_different_nodes()
    await seed(cluster_client, {(s, "dc"): 2 for s in skus})
    lines = [{"sku": s, "quantity": 2} for s in skus]
    ok = await cluster_client.post("/v1/holds", json={"channel": "web", "lines": lines})
    assert ok.status_code == 201, ok.text
    assert len(ok.json()["lines"]) == 3
    again = await cluster_client.post("/v1/holds", json={"channel": "web", "lines": lines[:2]})
    assert again.status_code == 409
    query = await cluster_client.post(
        "/v1/availability/query", json={"skus": skus, "channel": "web"}
    )
    assert [r["available"] for r in query.json()["results"]] == [0, 0, 0]


async def test_transitions_events_and_expiry_work_on_a_cluster(
    cluster_client: httpx.AsyncClient, cluster_app: tuple[FastAPI, ManualClock]
) -> None:
    app, clock = cluster_app
    skus = _skus_on_different_nodes()
    await seed(cluster_client, {(s, "dc"): 5 for s in skus})
    lines = [{"sku": s, "quantity": 1} for s in skus]
    committed = (await cluster_client.post("/v1/holds", json={"lines": lines})).json()
    r = await cluster_client.post(
        f"/v1/holds/{committed['id']}/commit", headers={"Idempotency-Key": "c1"}
    )
    assert r.status_code == 200 and r.json()["status"] == "committed"
    lapsing = (
        await cluster_client.post("/v1/holds", json={"ttl_seconds": 1, "lines": lines})
    ).json()
    clock.advance(2)
    assert await app.state.services.reaper.run_once() == 3  # one part per node
    assert (await cluster_client.get(f"/v1/holds/{lapsing['id']}")).json()["status"] == "expired"
    sale = {"id": "pos-1", "type": "sale", "sku": skus[0], "location": "dc", "quantity": 5}
    result = (await cluster_client.post("/v1/stock/events", json={"events": [sale]})).json()
    assert result["results"][0]["position"]["on_hand"] == 0
    positions = (await cluster_client.get(f"/v1/stock/{skus[1]}")).json()["positions"]
    assert positions[0]["committed"] == 1 and positions[0]["held"] == 0
