"""The event feed on a real 3-primary cluster, through a real `omnistock serve`: SSE, the log
and `omnistock events tail` give one total order equal to the single-server rule (every
partition's entries sorted by (ms, seq, partition)), resume from any cursor gives exactly the
rest, a node whose clock runs ahead is held back by the min-TIME rule, and a paused node
answers 503 / makes streams wait, never 500."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from app import keys
from app.events.ids import EventId
from tests.cluster.conftest import (
    local_cluster,
    node_of_partition,
    serve_on_cluster,
    skus_on_different_nodes,
)
from tests.cluster.support import LocalCluster
from tests.conftest import ServiceProcess, seed
from tests.events.helpers import event_key, open_sse, read_log

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


@pytest.fixture(scope="module")
def cluster_service(
    no_replica_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    log_path = tmp_path_factory.mktemp("svc") / "service.log"
    service = serve_on_cluster(no_replica_cluster.seeds, log_path)
    yield service
    service.stop()


@pytest.fixture
async def api(cluster_service: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=20)
    async with httpx.AsyncClient(
        base_url=cluster_service.base_url, timeout=15, limits=limits
    ) as client:
        yield client


def all_event_ids(url: str) -> list[str]:
    """Every entry of every partition's stream, sorted by (ms, seq, partition): the order a
    single server's feed gives, computed by brute force."""
    client: Any = redis.RedisCluster.from_url(url, decode_responses=True)
    try:
        found = [
            EventId.of(sid, p)
            for p in range(keys.PARTITIONS)
            for sid, _ in client.xrange(keys.events(p))
        ]
    finally:
        client.close()
    return [str(k) for k in sorted(found)]


async def write_on_every_node(api: httpx.AsyncClient, rounds: int) -> list[str]:
    """`rounds` stock changes on each of 6 skus, 2 on each node, concurrently per round."""
    skus = skus_on_different_nodes(f"ev{uuid.uuid4().hex[:6]}", per_node=2)
    for i in range(rounds):
        replies = await asyncio.gather(
            *(api.put(f"/v1/stock/{sku}/dc", json={"on_hand": i + 1}) for sku in skus)
        )
        assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
    return skus


async def test_events_from_three_nodes_come_in_one_order_over_sse_and_the_log(
    api: httpx.AsyncClient, cluster_service: ServiceProcess, cluster_url: str
) -> None:
    await seed(api)
    before = all_event_ids(cluster_url)
    async with open_sse(api) as live:
        skus = await write_on_every_node(api, rounds=8)
        wanted = [i for i in all_event_ids(cluster_url) if i not in set(before)]
        assert len(wanted) == 8 * len(skus)
        assert {node_of_partition(event_key(i).partition) for i in wanted} == {0, 1, 2}
        got = [e.id for e in await live.take(len(wanted), within=20)]
        with pytest.raises(TimeoutError):
            await live.next(within=0.5)  # no duplicate after them
    assert got == wanted
    log, _ = await read_log(api, limit=7)
    assert [e["id"] for e in log] == all_event_ids(cluster_url)


async def test_resume_from_every_cursor_gives_exactly_the_rest(
    api: httpx.AsyncClient, cluster_service: ServiceProcess, cluster_url: str
) -> None:
    await seed(api)
    await write_on_every_node(api, rounds=3)
    ids = all_event_ids(cluster_url)
    for n, cursor in enumerate(ids):
        rest = ids[n + 1 :]
        log, _ = await read_log(api, limit=5, after=cursor)
        assert [e["id"] for e in log] == rest, cursor
    for n in range(0, len(ids), 3):
        rest = ids[n + 1 :]
        async with open_sse(api, headers={"Last-Event-ID": ids[n]}) as stream:
            got = [e.id for e in await stream.take(len(rest), within=10)] if rest else []
            with pytest.raises(TimeoutError):
                await stream.next(within=0.3)
        assert got == rest, ids[n]


def test_events_tail_reads_and_follows_the_cluster(
    cluster_service: ServiceProcess, cluster_url: str
) -> None:
    base = cluster_service.base_url
    with httpx.Client(base_url=base, timeout=10) as api:
        sku = skus_on_different_nodes(f"tail{uuid.uuid4().hex[:6]}")[2]
        api.put("/v1/locations/dc", json={"priority": 1, "ship": True})
        known = all_event_ids(cluster_url)
        argv = [sys.executable, "-m", "app", "events", "tail", "--url", base]
        done = subprocess.run(
            [*argv, "--no-follow"], capture_output=True, text=True, timeout=30, check=False
        )
        assert done.returncode == 0, done.stderr
        assert [json.loads(line)["id"] for line in done.stdout.splitlines()] == known
        # Following: the live events after the last one read, from a node of their own.
        follow = subprocess.Popen(
            [*argv, "--after", known[-1], "--limit", "3", "--sku", sku],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(1.0)
            for on_hand in (1, 2, 3):
                assert api.put(f"/v1/stock/{sku}/dc", json={"on_hand": on_hand}).is_success
            out, err = follow.communicate(timeout=30)
        finally:
            follow.kill()
    assert follow.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [e["position"]["on_hand"] for e in lines] == [1, 2, 3]
    assert [e["id"] for e in lines] == [i for i in all_event_ids(cluster_url) if i not in known]


async def test_a_paused_node_makes_the_log_answer_503_and_streams_wait(
    api: httpx.AsyncClient,
    cluster_service: ServiceProcess,
    cluster_url: str,
    no_replica_cluster: LocalCluster,
) -> None:
    await seed(api)
    skus = await write_on_every_node(api, rounds=1)
    ids = all_event_ids(cluster_url)
    log_size = cluster_service.log_path.stat().st_size
    async with open_sse(api, headers={"Last-Event-ID": ids[0]}) as stream:
        no_replica_cluster.pause(no_replica_cluster.nodes[0])
        try:
            r = await api.get("/v1/events/log", params={"after": ids[0]})
            assert r.status_code == 503, r.text
            assert r.json()["code"] == "store_unavailable"
        finally:
            no_replica_cluster.resume(no_replica_cluster.nodes[0])
        got = [e.id for e in await stream.take(len(ids) - 1, within=20)]
    assert got == ids[1:]
    assert skus
    new_log = cluster_service.log_path.read_bytes()[log_size:].decode(errors="replace")
    assert "Traceback" not in new_log, new_log[-3000:]


@pytest.fixture(scope="module")
def skewed_cluster(
    server_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, ServiceProcess]]:
    """A cluster whose node 2 runs 2 s ahead of the others (libfaketime), and a service."""
    if not Path(FAKETIME_LIB).exists():
        pytest.skip("libfaketime is not installed")
    ahead = {
        "LD_PRELOAD": FAKETIME_LIB,
        "FAKETIME": "+2s",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    base = tmp_path_factory.mktemp("skewed")
    with local_cluster(server_binary, base, replicas=0, node_env={2: ahead}) as cluster:
        service = serve_on_cluster(cluster.seeds, base / "service.log")
        try:
            yield cluster.nodes[0].url, service
        finally:
            service.stop()


async def test_a_node_running_ahead_is_held_back_until_every_clock_passes_its_events(
    skewed_cluster: tuple[str, ServiceProcess],
) -> None:
    url, service = skewed_cluster
    async with httpx.AsyncClient(base_url=service.base_url, timeout=15) as api:
        await seed(api)
        ahead_sku, *_ = skus_on_different_nodes("skew", per_node=1)[2:]
        behind_sku = skus_on_different_nodes("skew", per_node=1)[0]
        async with open_sse(api) as live:
            await api.put(f"/v1/stock/{ahead_sku}/dc", json={"on_hand": 1})  # stamped +2 s
            await api.put(f"/v1/stock/{behind_sku}/dc", json={"on_hand": 1})  # stamped now
            stamped = all_event_ids(url)
            ahead_id = next(i for i in stamped if node_of_partition(event_key(i).partition) == 2)
            behind_id = next(i for i in stamped if i != ahead_id)
            assert event_key(ahead_id).ms - event_key(behind_id).ms > 1500
            # Written first, ordered last: the slow clocks have not passed its stamp yet.
            now, _ = await read_log(api)
            assert [e["id"] for e in now] == [behind_id]
            first = await live.next(within=2)
            assert first.id == behind_id
            with pytest.raises(TimeoutError):
                await live.next(within=1.0)
            second = await live.next(within=5)  # once every node's clock is past it
            assert second.id == ahead_id
        later, _ = await read_log(api)
        assert [e["id"] for e in later] == [behind_id, ahead_id] == stamped
