"""`Auditor.audit` finds every kind of drift between the hold records (the truth) and the
counters, indexes and event log; `Auditor.repair` restores them from the records."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from app import keys
from app.domain.audit import Auditor, AuditReport
from app.domain.clock import ManualClock, store_now_ms
from app.store.calls import HoldStatus
from app.store.scripts import Scripts
from tests.api.helpers import act, hold, skus_in_distinct_partitions
from tests.conftest import seed
from tests.lua.helpers import reserve_call

A, B = skus_in_distinct_partitions(2, "audit")
PA, PB = keys.partition_of(A), keys.partition_of(B)


@dataclass
class World:
    active: dict[str, Any]  # 2 of A at dc
    cart: dict[str, Any]  # committed, 1 of A and 3 of B at dc: a multi-partition hold
    released: dict[str, Any]  # 1 of B
    fulfilled: dict[str, Any]  # 1 of A


@pytest.fixture
async def auditor(redis: Redis, clock: ManualClock) -> Auditor:
    # Parts that disagree are read again after a grace period (a transition may be in flight):
    # short here, longer than any request in production.
    return Auditor(redis, Scripts.register(redis), clock, parts_grace=0.2)


@pytest.fixture
async def world(client: httpx.AsyncClient) -> World:
    await seed(client, {(A, "dc"): 20, (B, "dc"): 20, (A, "store-a"): 5})
    active = await hold(client, [{"sku": A, "quantity": 2}])
    cart = await hold(client, [{"sku": A, "quantity": 1}, {"sku": B, "quantity": 3}])
    assert (await act(client, cart["id"], "commit")).status_code == 200
    released = await hold(client, [{"sku": B, "quantity": 1}])
    assert (await act(client, released["id"], "release")).status_code == 200
    fulfilled = await hold(client, [{"sku": A, "quantity": 1}])
    assert (await act(client, fulfilled["id"], "commit")).status_code == 200
    assert (await act(client, fulfilled["id"], "fulfil")).status_code == 200
    return World(active, cart, released, fulfilled)


def kinds(report: AuditReport) -> list[str]:
    return sorted(f.kind for f in report.findings)


async def member(redis: Redis, p: int, hold_id: str, line: int = 0) -> str:
    """The hx member of a hold's line (its order from the record; lua/includes/position.lua)."""
    record: Any = await redis.hgetall(keys.hold(p, hold_id))
    lines = orjson.loads(record["lines"])
    order = record["orders"].split(",")[line]
    return f"{order}|{hold_id}|{lines[line]['location']}|{lines[line]['quantity']}"


async def test_a_store_written_only_by_the_service_is_clean(world: World, auditor: Auditor) -> None:
    report = await auditor.audit()
    assert report.clean, report.findings
    assert report.partitions == keys.PARTITIONS
    assert report.holds == 5  # the cart has a record in each of its two partitions
    assert report.positions == 3
    assert report.events_checked == 3


async def test_a_lapsed_hold_the_reaper_has_not_reached_is_not_drift(
    client: httpx.AsyncClient, auditor: Auditor, clock: ManualClock
) -> None:
    await seed(client, {(A, "dc"): 5})
    await hold(client, [{"sku": A, "quantity": 2}], ttl_seconds=60)
    clock.advance(61)
    report = await auditor.audit()
    assert report.clean, report.findings


async def test_held_that_differs_from_the_active_holds_is_counter_drift(
    world: World, auditor: Auditor, redis: Redis
) -> None:
    await redis.hset(keys.position(PA, A), "dc", "19:7:1:0")  # the records say held 2
    report = await auditor.audit()
    drift = [f for f in report.findings if f.kind == "counter_drift"]
    assert len(drift) == 1
    assert (drift[0].sku, drift[0].location, drift[0].fixable) == (A, "dc", True)
    assert drift[0].stored == {"held": 7, "committed": 1}
    assert drift[0].expected == {"held": 2, "committed": 1}


async def test_committed_that_differs_from_the_committed_holds_is_counter_drift(
    world: World, auditor: Auditor, redis: Redis
) -> None:
    await redis.hset(keys.position(PB, B), "dc", "20:0:0:0")  # the cart commits 3 of B
    report = await auditor.audit()
    drift = [f for f in report.findings if f.kind == "counter_drift"]
    assert [(f.sku, f.stored, f.expected) for f in drift] == [
        (B, {"held": 0, "committed": 0}, {"held": 0, "committed": 3})
    ]


async def test_index_entries_without_a_hold_record_are_orphans(
    world: World, auditor: Auditor, redis: Redis
) -> None:
    await redis.zadd(keys.expiry_index(PA), {"hghost-00": 1})
    await redis.zadd(keys.hold_line_index(PA, A), {f"{1:016d}|hghost-00|dc|4": 1})
    report = await auditor.audit()
    assert kinds(report) == ["index_orphan"] * 2
    assert {f.index for f in report.findings} == {"expiry", "hx"}
    assert {f.hold for f in report.findings} == {"hghost-00"}


async def test_an_active_hold_missing_from_its_indexes_is_found(
    world: World, auditor: Auditor, redis: Redis
) -> None:
    await redis.zrem(keys.expiry_index(PA), world.active["id"])
    await redis.zrem(keys.hold_line_index(PA, A), await member(redis, PA, world.active["id"]))
    report = await auditor.audit()
    assert kinds(report) == ["index_missing"] * 2
    assert {f.hold for f in report.findings} == {world.active["id"]}


async def test_an_index_entry_of_a_finished_hold_is_stale(
    world: World, auditor: Auditor, redis: Redis
) -> None:
    await redis.zadd(keys.hold_line_index(PB, B), {f"{1:016d}|{world.released['id']}|dc|1": 1})
    report = await auditor.audit()
    assert kinds(report) == ["index_stale"]
    assert "released" in report.findings[0].message


async def test_an_index_score_other_than_the_holds_deadline_is_found(
    world: World, auditor: Auditor, redis: Redis
) -> None:
    await redis.zadd(keys.hold_line_index(PA, A), {await member(redis, PA, world.active["id"]): 5})
    report = await auditor.audit()
    assert kinds(report) == ["index_score"]
    assert report.findings[0].stored == 5


async def test_units_held_at_a_location_without_a_position_are_found(
    client: httpx.AsyncClient, auditor: Auditor, redis: Redis
) -> None:
    await seed(client, {(A, "dc"): 5})
    await hold(client, [{"sku": A, "quantity": 2}])
    await redis.hdel(keys.position(PA, A), "dc")
    report = await auditor.audit()
    assert kinds(report) == ["position_missing"]
    assert report.findings[0].expected == {"held": 2, "committed": 0}


async def test_a_sku_with_positions_missing_from_the_skus_set_is_found(
    world: World, auditor: Auditor, redis: Redis
) -> None:
    await redis.srem(keys.skus(PB), B)
    report = await auditor.audit()
    assert [(f.kind, f.sku) for f in report.findings] == [("sku_unlisted", B)]


async def test_a_newest_event_that_disagrees_with_its_position_is_found_and_not_repairable(
    world: World, auditor: Auditor, redis: Redis
) -> None:
    await redis.hset(keys.position(PB, B), "dc", "99:0:3:0")  # on_hand has no second source
    report = await auditor.audit()
    assert kinds(report) == ["event_mismatch"]
    finding = report.findings[0]
    assert (finding.sku, finding.location, finding.fixable) == (B, "dc", False)
    assert finding.stored["on_hand"] == 20
    assert finding.expected["on_hand"] == 99


async def test_an_unreadable_hold_record_is_reported_and_its_index_entries_left_alone(
    world: World, auditor: Auditor, redis: Redis
) -> None:
    line = await member(redis, PA, world.active["id"])
    await redis.hset(keys.hold(PA, world.active["id"]), "lines", "not json")
    report = await auditor.audit()
    assert kinds(report) == ["counter_drift", "hold_unreadable"]  # its 2 held have no record
    assert not next(f for f in report.findings if f.kind == "hold_unreadable").fixable
    await auditor.repair(range(keys.PARTITIONS), 0, b"{}")
    assert await redis.zscore(keys.expiry_index(PA), world.active["id"]) is not None
    assert await redis.zscore(keys.hold_line_index(PA, A), line) is not None


async def test_a_hold_record_without_an_order_per_line_is_unreadable_and_left_alone(
    world: World, auditor: Auditor, redis: Redis
) -> None:
    line = await member(redis, PA, world.active["id"])
    await redis.hset(keys.hold(PA, world.active["id"]), "orders", "")  # 1 line, no order
    report = await auditor.audit()
    assert kinds(report) == ["counter_drift", "hold_unreadable"]  # its 2 held have no record
    await auditor.repair(range(keys.PARTITIONS), 0, b"{}")
    assert await redis.zscore(keys.hold_line_index(PA, A), line) is not None


async def test_parts_of_a_multi_partition_hold_that_disagree_are_found(
    world: World, auditor: Auditor, redis: Redis, client: httpx.AsyncClient
) -> None:
    cart = await hold(client, [{"sku": A, "quantity": 1}, {"sku": B, "quantity": 1}])
    await redis.hset(keys.hold(PB, cart["id"]), "status", "released")
    report = await auditor.audit()
    assert "hold_parts_disagree" in kinds(report)
    parts = next(f for f in report.findings if f.kind == "hold_parts_disagree")
    assert parts.hold == cart["id"] and not parts.fixable


async def test_an_open_hold_missing_one_of_its_parts_is_found(
    world: World, auditor: Auditor, redis: Redis
) -> None:
    await redis.delete(keys.hold(PB, world.cart["id"]))
    report = await auditor.audit()
    missing = [f for f in report.findings if f.kind == "hold_part_missing"]
    assert [f.hold for f in missing] == [world.cart["id"]]


async def test_parts_of_a_reservation_still_in_flight_are_not_drift(
    client: httpx.AsyncClient, auditor: Auditor, redis: Redis, clock: ManualClock
) -> None:
    await seed(client, {(A, "dc"): 5, (B, "dc"): 5})
    scripts = Scripts.register(redis)
    now = await store_now_ms(redis, clock)
    for p, sku in ((PA, A), (PB, B)):  # both parts reserved, neither confirmed yet
        call = reserve_call(
            partition=p,
            hold_id="hflight-00",
            skus=[sku],
            lines=[{"s": 1, "q": 1, "l": "dc"}],
            status=HoldStatus.PENDING,
            ttl_ms=900_000,
            pending_ttl_ms=30_000,
            parts=f"{PA},{PB}",
            owner="client-a",
            offset_ms=clock.offset_ms(),
        )
        await scripts.run(call)
    await redis.hset(keys.hold(PB, "hflight-00"), "status", "active")  # B confirmed, A not yet
    await redis.zadd(keys.expiry_index(PB), {"hflight-00": now + 900_000})
    flight = await member(redis, PB, "hflight-00")
    await redis.zadd(keys.hold_line_index(PB, B), {flight: now + 900_000})
    await redis.hset(keys.hold(PB, "hflight-00"), "count_until", now + 900_000)
    report = await auditor.audit()
    assert report.clean, report.findings


async def test_repair_makes_a_drifted_store_clean_and_keeps_on_hand_and_safety_stock(
    world: World, auditor: Auditor, redis: Redis
) -> None:
    await redis.hset(keys.position(PA, A), "dc", "19:0:9:4")
    await redis.hdel(keys.position(PA, A), "store-a")  # nothing is held there: not drift
    await redis.zadd(keys.expiry_index(PB), {"hghost-00": 1})
    cart_line = await member(redis, PB, world.cart["id"])  # committed: scored +inf
    await redis.zrem(keys.hold_line_index(PB, B), cart_line)
    await redis.srem(keys.skus(PB), B)
    before = await auditor.audit()
    assert kinds(before) == ["counter_drift", "index_missing", "index_orphan", "sku_unlisted"]

    changes = await auditor.repair(range(keys.PARTITIONS), 0, b"{}")

    assert {c["kind"] for c in changes} == {"counters", "index_add", "index_remove", "sku_listed"}
    after = await auditor.audit()
    assert after.clean, after.findings
    assert await redis.hget(keys.position(PA, A), "dc") == "19:2:1:4"
    assert await redis.hget(keys.position(PA, A), "store-a") is None  # nothing held there
    assert await redis.zscore(keys.hold_line_index(PB, B), cart_line) == float("inf")


async def test_repair_upgrades_a_store_written_before_the_one_line_index(
    world: World, auditor: Auditor, redis: Redis, client: httpx.AsyncClient
) -> None:
    # The old schema: records without `orders`, hx members "hold|location|qty" of the active
    # and pending lines, and a second index ho:<sku> of every open line.
    old: dict[str, float] = {}
    for hold_id, p, sku, qty, committed in (
        (world.active["id"], PA, A, 2, False),
        (world.cart["id"], PA, A, 1, True),
        (world.cart["id"], PB, B, 3, True),
    ):
        index = keys.hold_line_index(p, sku)
        await redis.zrem(index, await member(redis, p, hold_id))
        await redis.hdel(keys.hold(p, hold_id), "orders")
        count_until: Any = await redis.hget(keys.hold(p, hold_id), "count_until")
        if not committed:
            await redis.zadd(index, {f"{hold_id}|dc|{qty}": int(count_until or 0)})
        await redis.zadd(keys.hold_open_by_sku_before_one_index(p, sku), {f"{hold_id}|dc|{qty}": 1})
        old[hold_id] = float(count_until) if not committed else float("inf")
    before = await auditor.audit()
    assert kinds(before).count("index_legacy") == 2  # ho:A, ho:B
    assert all(f.fixable for f in before.findings), before.findings

    changes = await auditor.repair(range(keys.PARTITIONS), 0, b"{}")

    assert sum(c["kind"] == "index_dropped" for c in changes) == 2
    assert (await auditor.audit()).clean
    for p, sku in ((PA, A), (PB, B)):
        assert not await redis.exists(keys.hold_open_by_sku_before_one_index(p, sku))
    created: Any = await redis.hget(keys.hold(PA, world.active["id"]), "created_at")
    cart_created: Any = await redis.hget(keys.hold(PA, world.cart["id"]), "created_at")
    upgraded = f"{created}000|{world.active['id']}|dc|2"
    assert await redis.zrange(keys.hold_line_index(PA, A), 0, -1, withscores=True) == [
        (upgraded, old[world.active["id"]]),
        (f"{cart_created}000|{world.cart['id']}|dc|1", float("inf")),
    ]
    # the scripts name an upgraded record's lines as the repair indexed them
    assert (await act(client, world.active["id"], "release")).status_code == 200
    assert await redis.zscore(keys.hold_line_index(PA, A), upgraded) is None


async def test_repair_gives_an_index_entry_its_holds_deadline_back(
    world: World, auditor: Auditor, redis: Redis
) -> None:
    line = await member(redis, PA, world.active["id"])
    deadline = await redis.zscore(keys.hold_line_index(PA, A), line)
    await redis.zadd(keys.hold_line_index(PA, A), {line: 5})

    changes = await auditor.repair([PA], 0, b"{}")

    assert changes == [
        {
            "partition": PA,
            "kind": "index_add",
            "index": "hx",
            "member": line,
            "sku": A,
            "score": deadline,
        }
    ]
    assert await redis.zscore(keys.hold_line_index(PA, A), line) == deadline
    assert (await auditor.audit()).clean


async def test_repair_writes_an_audit_repaired_event_with_the_counters_before(
    world: World, auditor: Auditor, redis: Redis
) -> None:
    await redis.hset(keys.position(PA, A), "dc", "19:5:1:0")
    await auditor.repair([PA], 0, b"{}")
    last: Any = await redis.xrevrange(keys.events(PA), count=1)
    [(_, event)] = last
    assert event["type"] == "audit.repaired"
    assert (event["sku"], event["location"], event["previous"]) == (A, "dc", "19:5:1:0")
    assert (event["held"], event["committed"]) == ("2", "1")


async def test_repair_of_a_clean_store_changes_nothing(
    world: World, auditor: Auditor, redis: Redis
) -> None:
    events = await redis.xlen(keys.events(PA))
    assert await auditor.repair(range(keys.PARTITIONS), 0, b"{}") == []
    assert await redis.xlen(keys.events(PA)) == events


@pytest.mark.slow
async def test_audit_and_repair_racing_live_traffic_find_nothing_and_change_nothing(
    client: httpx.AsyncClient, auditor: Auditor
) -> None:
    await seed(client, {(A, "dc"): 10_000, (B, "dc"): 10_000})
    stop = asyncio.Event()
    done = [0]

    async def traffic(n: int) -> None:
        rng = random.Random(n)
        while not stop.is_set():
            done[0] += 1
            lines = [{"sku": s, "quantity": 1} for s in rng.sample([A, B], rng.randint(1, 2))]
            r = await client.post("/v1/holds", json={"channel": "web", "lines": lines})
            assert r.status_code == 201, r.text
            action = rng.choice(["commit", "release", "keep"])
            if action != "keep":
                assert (await act(client, r.json()["id"], action)).status_code == 200

    tasks = [asyncio.create_task(traffic(n)) for n in range(6)]
    reports: list[Any] = []
    changes: list[Any] = []
    while done[0] < 200 or len(reports) < 5:
        reports.append(await auditor.audit([PA, PB]))
        changes += await auditor.repair([PA, PB], 0, b"{}")
    stop.set()
    await asyncio.gather(*tasks)
    assert all(r.clean for r in reports), [r.findings for r in reports if not r.clean]
    assert changes == []
    assert (await auditor.audit([PA, PB])).clean
    assert reports[-1].holds > reports[0].holds  # the traffic ran while they did
