"""OMNISTOCK_WAIT_REPLICAS / OMNISTOCK_WAIT_AOF (app/store/durable.py) on a real primary with
one real replica: a change is acknowledged only once the replica holds it; with the replica
stopped the answer is 503 within the deadline and a retry with the same Idempotency-Key is
exact; with N=0 no WAIT is ever sent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from redis import Redis as SyncRedis

from app import keys
from app.api.main import create_app
from app.domain.clock import ManualClock
from app.store.scripts import UNWAITED_WRITES, Scripts, script_source, waits
from tests.conftest import make_settings, seed
from tests.store.replicas import Replicated

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicated]:
    pair = Replicated(tmp_path_factory.mktemp("replicated"))
    pair.start()
    yield pair
    pair.stop()


@pytest.fixture
def pair(replicated: Replicated) -> Iterator[Replicated]:
    replicated.resume_replica()
    with replicated.primary_client() as primary:
        primary.flushall()
        primary.config_resetstat()
    replicated.wait_link_up()
    yield replicated
    replicated.resume_replica()


@asynccontextmanager
async def service(pair: Replicated, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(pair.primary.url, **overrides), ManualClock())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://omnistock") as c:
            yield c


# The production time bounds: a stopped replica must cost a 503 within the 1.25 s deadline.
TIGHT = {"redis_timeout_seconds": 1.0, "request_deadline_seconds": 1.25}


async def hold(c: httpx.AsyncClient, sku: str = "A", key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    body = {"channel": "web", "lines": [{"sku": sku, "quantity": 1}]}
    return await c.post("/v1/holds", json=body, headers=headers)


def hold_ids_on(client: SyncRedis) -> set[str]:
    return {k.rsplit(":", 1)[1] for k in client.scan_iter(match="os:{*}:hold:*")}


async def test_with_one_replica_a_hold_is_on_the_replica_when_its_201_arrives(
    pair: Replicated,
) -> None:
    async with service(pair, wait_replicas=1) as c:
        await seed(c, {("A", "dc"): 1000, ("B", "dc"): 1000})
        with pair.replica_client() as replica:
            for i in range(20):
                r = await hold(c, "A" if i % 2 else "B")
                assert r.status_code == 201, r.text
                hold_id = r.json()["id"]
                p = keys.partition_of(r.json()["lines"][0]["sku"])
                # Read the replica at once: no waiting, no polling.
                assert replica.hget(keys.hold(p, hold_id), "status") == "active"
            r = await c.post(f"/v1/holds/{hold_id}/release")
            assert r.status_code == 200
            assert replica.hget(keys.hold(p, hold_id), "status") == "released"
            r = await c.put("/v1/stock/A/dc", json={"on_hand": 7})
            assert r.status_code == 200
            assert replica.hget(keys.position(keys.partition_of("A"), "A"), "dc").startswith("7:")
    assert pair.wait_calls() >= 23


async def test_without_the_setting_no_wait_is_sent(pair: Replicated) -> None:
    async with service(pair) as c:
        await seed(c, {("A", "dc"): 100})
        for _ in range(10):
            assert (await hold(c)).status_code == 201
        assert (await hold(c, key="k-1")).status_code == 201
    assert pair.wait_calls() == 0
    assert pair.wait_calls("waitaof") == 0


async def test_with_the_replica_stopped_a_hold_answers_503_within_the_deadline(
    pair: Replicated,
) -> None:
    async with service(pair, wait_replicas=1, **TIGHT) as c:
        await seed(c, {("A", "dc"): 100})
        pair.stop_replica()
        started = time.monotonic()
        r = await hold(c, key="cart-1")
        took = time.monotonic() - started
        assert r.status_code == 503, r.text
        assert took < 1.25
        assert r.headers["Retry-After"] == "1"
        problem = r.json()
        assert problem["code"] == "store_unavailable"
        assert "1 replica(s) did not acknowledge the change" in problem["detail"]
        # A retry while the replica is still stopped: 503 again, never a 201 it cannot back.
        r = await hold(c, key="cart-1")
        assert r.status_code == 503, r.text
        pair.resume_replica()
        pair.wait_link_up()
        r = await hold(c, key="cart-1")
        assert r.status_code == 201, r.text
        again = await hold(c, key="cart-1")
        assert again.status_code == 201
        assert again.json() == r.json()
        assert again.headers.get("Idempotent-Replayed") == "true"
        availability = (await c.get("/v1/availability/A", params={"channel": "web"})).json()
    with pair.primary_client() as primary:
        assert hold_ids_on(primary) == {r.json()["id"]}  # exactly one hold
    assert availability["available"] == 99


async def test_a_replayed_retry_waits_for_the_first_attempts_change(pair: Replicated) -> None:
    """The retry's script writes nothing (the hold exists), and on a new connection a bare
    WAIT would answer "1" at once with the replica stopped: the mark makes it wait."""
    async with service(pair, wait_replicas=1, **TIGHT) as c:
        await seed(c, {("A", "dc"): 100})
        pair.stop_replica()
        assert (await hold(c, key="cart-2")).status_code == 503
    async with service(pair, wait_replicas=1, **TIGHT) as fresh:  # new connections
        r = await hold(fresh, key="cart-2")
        assert r.status_code == 503, r.text
        pair.resume_replica()
        pair.wait_link_up()
        r = await hold(fresh, key="cart-2")
        assert r.status_code == 201, r.text
    with pair.primary_client() as primary:
        assert len(hold_ids_on(primary)) == 1


async def test_reads_do_not_queue_behind_a_waiting_write(pair: Replicated) -> None:
    async with service(pair, wait_replicas=1, **TIGHT) as c:
        await seed(c, {("A", "dc"): 100})
        pair.stop_replica()
        writing = asyncio.ensure_future(hold(c))
        await asyncio.sleep(0.1)  # the hold's WAIT blocks its connection on the server
        started = time.monotonic()
        read = await c.get("/v1/availability/A", params={"channel": "web"})
        assert read.status_code == 200
        assert time.monotonic() - started < 0.3
        assert not writing.done()
        assert (await writing).status_code == 503


async def test_concurrent_writes_share_one_wait(pair: Replicated) -> None:
    async with service(pair, wait_replicas=1) as c:
        await seed(c, {("A", "dc"): 1000})
        before = pair.wait_calls()
        replies = await asyncio.gather(*(hold(c) for _ in range(200)))
        assert [r.status_code for r in replies] == [201] * 200
        waits_sent = pair.wait_calls() - before
    assert 1 <= waits_sent <= 50, waits_sent  # group commit: one WAIT per batch, not per write


async def test_wait_aof_waits_for_the_replicas_append_only_file(pair: Replicated) -> None:
    async with service(pair, wait_replicas=1, wait_aof=True) as c:
        await seed(c, {("A", "dc"): 10})
        r = await hold(c)
        assert r.status_code == 201, r.text
        with pair.replica_client() as replica:
            assert replica.hget(keys.hold(keys.partition_of("A"), r.json()["id"]), "status")
    assert pair.wait_calls("waitaof") >= 1
    assert pair.wait_calls() == 0


def test_every_mutating_script_waits_and_no_read_does() -> None:
    names = [f.name for f in Scripts.__dataclass_fields__.values()]
    reads = {n for n in names if script_source(n).startswith("#!lua flags=no-writes")}
    assert reads == {
        "availability",
        "audit_snapshot",
        "audit_supply",
        "hold_read",
        "hold_due",
        "supply_read",
    }
    assert {n for n in names if waits(n)} == set(names) - reads - UNWAITED_WRITES
