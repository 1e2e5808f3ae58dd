"""The cluster client's discipline on a real 3-primary cluster with replicas and AOF: seeds,
no re-sends, 503 (never 500) for what a dead node serves while the rest answers, the reaper
per node, and the least-privilege ACL user."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI
from redis.crc import key_slot

from app import keys
from app.settings import Settings
from app.store.connection import connect
from app.store.embedded import free_port
from tests.cluster.support import LocalCluster, Node, serving
from tests.conftest import seed

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

ACL_FILE = Path(__file__).resolve().parents[2] / "docs" / "store-acl.conf"


@pytest.fixture
def cluster(cluster_with_replicas: LocalCluster) -> Iterator[LocalCluster]:
    cluster_with_replicas.flushall()
    yield cluster_with_replicas
    # redis-py leaves some connections of a node a failover dropped to the garbage collector:
    # collected here, their ResourceWarning does not land in an unrelated later test.
    gc.collect()


def app_of(client: httpx.AsyncClient) -> FastAPI:
    return client.app  # type: ignore[attr-defined,no-any-return]


def one_sku_per_primary(cluster: LocalCluster) -> list[tuple[Node, str]]:
    return [(node, cluster.sku_on(node, f"n{i}")) for i, node in enumerate(cluster.primary_nodes())]


async def eventually(check: Callable[[], object], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            if await check():  # type: ignore[misc]
                return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {within} s")
        await asyncio.sleep(0.1)


def killed_and_restored(cluster: LocalCluster, node: Node) -> None:
    """After a test killed `node`: its replica took over; it comes back as a replica."""
    cluster.wait_for_failover(node)
    cluster.restart(node)


async def test_seeds_are_tried_in_turn_when_the_first_is_down(cluster: LocalCluster) -> None:
    dead = f"redis://127.0.0.1:{free_port()}"
    async with serving(f"{dead},{cluster.seeds}") as client:
        await seed(client, {("s-1", "dc"): 3})
        assert (await client.get("/readyz")).status_code == 200
        hold = await client.post("/v1/holds", json={"lines": [{"sku": "s-1", "quantity": 2}]})
        assert hold.status_code == 201, hold.text


# redis-py leaves the timed-out connection's transport to the garbage collector.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_a_command_that_timed_out_is_not_sent_again(cluster: LocalCluster) -> None:
    """redis-py's default cluster client re-sends a timed-out command (up to 10 times): a
    script that ran would run again. This one sends it once and reports the timeout."""
    key = "os:resend-probe"
    primary = cluster.primary_for_slot(key_slot(key.encode()))
    other = next(node for node in cluster.live() if node is not primary)
    client = connect(Settings(redis_url=other.url, redis_cluster=True, redis_timeout_seconds=0.2))
    assert client.retry.get_retries() == 0  # type: ignore[attr-defined]  # default: 10
    try:
        await client.get(key)  # a pooled connection to the primary: INCR goes out at once
        cluster.pause(primary)
        try:
            with pytest.raises((redis.RedisError, TimeoutError)):
                async with asyncio.timeout(0.6):  # resumed well inside the node timeout
                    await client.incr(key)
        finally:
            cluster.resume(primary)
        await asyncio.sleep(0.3)  # the paused node runs what it had received
        assert primary.call("GET", key) == b"1"  # sent once
    finally:
        await client.aclose()
        gc.collect()


async def test_a_killed_primary_answers_503_for_its_slots_and_the_others_keep_answering(
    cluster: LocalCluster,
) -> None:
    placed = one_sku_per_primary(cluster)
    (victim, lost_sku), *healthy = placed
    async with serving(cluster.seeds) as client:
        await seed(client, {(sku, "dc"): 5 for _, sku in placed})
        cluster.kill(victim)
        try:
            for _ in range(3):
                r = await client.get(f"/v1/availability/{lost_sku}")
                assert r.status_code == 503, r.text
                assert r.headers["Retry-After"] == "1"
                assert r.json()["code"] == "store_unavailable"
                hold = await client.post(
                    "/v1/holds", json={"lines": [{"sku": lost_sku, "quantity": 1}]}
                )
                assert hold.status_code == 503, hold.text
                for _, sku in healthy:
                    r = await client.get(f"/v1/availability/{sku}")
                    assert r.status_code == 200, r.text
                    hold = await client.post(
                        "/v1/holds", json={"lines": [{"sku": sku, "quantity": 1}]}
                    )
                    assert hold.status_code == 201, hold.text

            async def served_again() -> bool:
                r = await client.get(f"/v1/availability/{lost_sku}")
                assert r.status_code in (200, 503), r.text
                return r.status_code == 200 and r.json()["available"] == 5

            await eventually(served_again)
            hold = await client.post(
                "/v1/holds", json={"lines": [{"sku": lost_sku, "quantity": 1}]}
            )
            assert hold.status_code == 201, hold.text
        finally:
            killed_and_restored(cluster, victim)


async def test_the_reaper_expires_holds_on_the_healthy_nodes_while_a_primary_is_down(
    cluster: LocalCluster,
) -> None:
    placed = one_sku_per_primary(cluster)
    async with serving(cluster.seeds) as client:
        await seed(client, {(sku, "dc"): 5 for _, sku in placed})
        holds = {}
        for node, sku in placed:
            r = await client.post(
                "/v1/holds", json={"ttl_seconds": 1, "lines": [{"sku": sku, "quantity": 2}]}
            )
            assert r.status_code == 201, r.text
            holds[node.port] = r.json()["id"]
        await asyncio.sleep(1.1)
        victim = placed[0][0]
        # The victim's replica is paused while the reaper runs: however slow the machine, the
        # victim's slots stay down (no failover) during that pass.
        replica = cluster.replicas_of(victim)[0]
        cluster.pause(replica)
        cluster.kill(victim)
        try:
            reaper = app_of(client).state.services.reaper
            try:
                assert await reaper.run_once() == 2
                for node, _ in placed[1:]:
                    r = await client.get(f"/v1/holds/{holds[node.port]}")
                    assert r.json()["status"] == "expired"
            finally:
                cluster.resume(replica)

            async def reaped_after_failover() -> bool:
                return await reaper.run_once() == 1

            await eventually(reaped_after_failover)
            r = await client.get(f"/v1/holds/{holds[victim.port]}")
            assert r.json()["status"] == "expired"
        finally:
            killed_and_restored(cluster, victim)


async def test_a_service_whose_only_seed_is_down_answers_503_then_serves_once_it_is_up(
    cluster: LocalCluster,
) -> None:
    async with serving(cluster.seeds) as client:
        await seed(client, {("s-1", "dc"): 3})
    seed_node = cluster.replicas_of(cluster.primary_nodes()[0])[0]
    cluster.kill(seed_node)
    try:
        async with serving(seed_node.url) as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 503 and ready.headers["Retry-After"] == "1"
            for _ in range(2):
                r = await client.get("/v1/availability/s-1")
                assert r.status_code == 503, r.text
                assert r.headers["Retry-After"] == "1"
            cluster.restart(seed_node)

            async def ready_again() -> bool:
                return (await client.get("/readyz")).status_code == 200

            await eventually(ready_again, 10)
            r = await client.get("/v1/availability/s-1")
            assert r.status_code == 200 and r.json()["available"] == 3
    finally:
        if not seed_node.alive:
            cluster.restart(seed_node)


def acl_rules(password: str) -> list[str]:
    line = next(
        line for line in ACL_FILE.read_text().splitlines() if line.startswith("user omnistock ")
    )
    return [f">{password}" if rule == ">CHANGE-ME" else rule for rule in line.split()[2:]]


async def test_the_least_privilege_acl_user_runs_the_service_on_a_cluster(
    cluster: LocalCluster,
) -> None:
    """docs/store-acl.conf's user, set on every node (ACLs are per node), serves the API, the
    reaper and readiness through the cluster client."""
    password = "acl-test-password"
    for node in cluster.live():
        node.call("ACL", "SETUSER", "omnistock", "reset", *acl_rules(password))
    try:
        seeds = ",".join(f"redis://omnistock:{password}@127.0.0.1:{n.port}" for n in cluster.live())
        placed = one_sku_per_primary(cluster)
        async with serving(seeds) as client:
            await seed(client, {(sku, "dc"): 4 for _, sku in placed})
            assert (await client.get("/readyz")).status_code == 200
            lines = [{"sku": sku, "quantity": 1} for _, sku in placed]
            hold = await client.post(
                "/v1/holds",
                json={"ttl_seconds": 1, "lines": lines},
                headers={"Idempotency-Key": "acl-1"},
            )
            assert hold.status_code == 201, hold.text
            query = await client.post(
                "/v1/availability/query", json={"skus": [s for _, s in placed]}
            )
            assert query.status_code == 200, query.text
            assert [r["available"] for r in query.json()["results"]] == [3, 3, 3]
            await asyncio.sleep(1.1)
            assert await app_of(client).state.services.reaper.run_once() == 3
            assert (await client.get(f"/v1/holds/{hold.json()['id']}")).json()[
                "status"
            ] == "expired"
        # The user can do nothing else: no key outside os:*, no FLUSHALL.
        port = cluster.live()[0].port
        with (
            redis.Redis(port=port, username="omnistock", password=password) as c,
            pytest.raises(redis.exceptions.NoPermissionError),
        ):
            c.flushall()
    finally:
        for node in cluster.live():
            node.call("ACL", "DELUSER", "omnistock")


def test_partition_groups_cover_every_partition_once(cluster: LocalCluster) -> None:
    from app.store.cluster import partitions_by_node

    async def groups() -> list[list[int]]:
        client: Any = connect(Settings(redis_url=cluster.seeds, redis_cluster=True))
        try:
            return await partitions_by_node(client)
        finally:
            await client.aclose()

    found = asyncio.run(groups())
    assert len(found) == 3
    assert sorted(p for group in found for p in group) == list(range(keys.PARTITIONS))


def test_a_write_on_a_connection_whose_node_just_died_is_a_503_not_a_500(
    cluster: LocalCluster,
) -> None:
    """Under uvloop (as `omnistock serve` runs), a command written on a pooled connection
    whose transport has closed raises RuntimeError ("the handler is closed"), not a
    ConnectionError: seen as a 500 when a primary was killed under traffic."""
    import uvloop

    from app.store.cluster import StoreUnavailable

    async def scenario() -> None:
        client: Any = connect(Settings(redis_url=cluster.seeds, redis_cluster=True))
        try:
            key = "os:closed-probe"
            await client.get(key)  # a pooled connection to the key's primary
            node = client.get_node_from_key(key)
            connection = node._free[0]  # type: ignore[attr-defined]
            connection._writer.transport.abort()  # the peer is gone; redis-py does not know
            await asyncio.sleep(0)
            with pytest.raises(StoreUnavailable, match="handler is closed"):
                await client.incr(key)
            assert await client.incr(key) == 1  # a fresh connection serves the next command
        finally:
            await client.aclose()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())


def test_a_connection_torn_down_by_another_task_mid_command_counts_as_dropped() -> None:
    """redis-py's disconnect from a slot-map refresh sets the reader/writer of a connection in
    use to None: the command then fails with an AttributeError on None (a 500 before)."""
    from app.store.cluster import _connection_dropped

    assert _connection_dropped(AttributeError("x", name="writelines", obj=None))
    assert _connection_dropped(RuntimeError("unable to perform operation; the handler is closed"))
    assert not _connection_dropped(AttributeError("x", name="writelines", obj=object()))
    assert not _connection_dropped(AttributeError("x", name="items", obj=None))
    assert not _connection_dropped(RuntimeError("something else"))
