"""A multi-partition hold stays all-or-nothing when its coordinator dies between the phases:
its home part decides, every other part follows by itself (app/domain/hold_parts.py).

A coordinator "dies" here by the domain step failing at the chosen point (the store keeps
what was written before it, as after a crash); the clock is played forward past the pending
deadline (ManualClock moves the store's "now" for every script).

TODO(cluster, issue 10.4): the same on tests/cluster's fixture with a real primary killed
between the phases: hold a 3-partition cart whose home partition and one other part live on
different primaries, stop the coordinator after hold_reserve (patch HoldService._decide to
raise), kill -9 the primary of a non-home part, let its replica take over, then check that the
reaper of a live service settles the hold (every part active if the home part was confirmed
first, every part expired otherwise), `held` equals the live records on every node, and the
audit is clean."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from app import keys
from app.domain.audit import Auditor
from app.domain.clock import ManualClock
from app.domain.errors import StoreUnavailable
from app.domain.hold_ids import home_partition
from app.domain.holds import HoldService
from app.store.calls import HoldStatus, Reply, Transition
from app.store.scripts import Scripts
from tests.api.helpers import act, hold, position, skus_in_distinct_partitions
from tests.conftest import seed

PENDING = 30  # settings.pending_ttl_seconds (default)


def cart_skus(prefix: str) -> list[str]:
    return skus_in_distinct_partitions(3, prefix)


def cart(skus: list[str]) -> list[dict[str, Any]]:
    return [{"sku": s, "quantity": q} for s, q in zip(skus, [1, 2, 3], strict=True)]


def holds_of(app: FastAPI) -> HoldService:
    service: HoldService = app.state.services.holds
    return service


@pytest.fixture
def crash(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """crash(when): the coordinator dies at the first confirm call `when(hold_id, partition)`
    answers True for (that call and every later one of the same create fail)."""
    service = holds_of(app)
    real = service.transition_part

    def arm(when: Callable[[str, int], bool]) -> None:
        dead: set[str] = set()

        async def step(hold_id: str, p: int, script: Any, *args: Any, **kw: Any) -> list[Any]:
            if script == "hold_confirm" and (hold_id in dead or when(hold_id, p)):
                dead.add(hold_id)
                raise StoreUnavailable("coordinator died")
            return await real(hold_id, p, script, *args, **kw)

        monkeypatch.setattr(service, "transition_part", step)

    yield arm
    monkeypatch.setattr(service, "transition_part", real)


async def the_hold_id(redis: Redis, skus: list[str]) -> str:
    """The id of the one hold on these skus (the client never got it: its create died)."""
    ids = set()
    for sku in skus:
        p = keys.partition_of(sku)
        async for key in redis.scan_iter(match=f"os:{{{p:03d}}}:hold:*"):
            ids.add(key.rsplit(":", 1)[1])
    (hold_id,) = ids
    return hold_id


async def statuses(redis: Redis, hold_id: str, skus: list[str]) -> list[Any]:
    return [await redis.hget(keys.hold(keys.partition_of(s), hold_id), "status") for s in skus]


async def held(client: httpx.AsyncClient, skus: list[str]) -> list[int]:
    return [(await position(client, s, "dc"))["held"] for s in skus]


async def create_dies(
    client: httpx.AsyncClient,
    skus: list[str],
    crash: Callable[..., None],
    when: Callable[[str, int], bool],
    **kw: Any,
) -> None:
    """A create whose coordinator dies at the first confirm `when` names (answer: 503)."""
    crash(when)
    r = await client.post("/v1/holds", json={"channel": "web", "lines": cart(skus)}, **kw)
    crash(lambda hold_id, p: False)  # the service goes on without it
    assert r.status_code == 503, r.text


async def events_of(redis: Redis, hold_id: str, skus: list[str]) -> list[str]:
    out: list[Any] = []
    for s in skus:
        for _, f in await redis.xrange(keys.events(keys.partition_of(s))):
            if f.get("hold") == hold_id:
                out.append(f["type"])
    return out


async def test_a_coordinator_dead_before_any_confirm_leaves_every_part_released_after_the_deadline(
    client: httpx.AsyncClient, app: FastAPI, clock: ManualClock, redis: Redis, crash: Any
) -> None:
    skus = cart_skus("die0")
    await seed(client, {(s, "dc"): 5 for s in skus})
    await create_dies(client, skus, crash, lambda hold_id, p: True)
    hold_id = await the_hold_id(redis, skus)
    assert await held(client, skus) == [1, 2, 3]  # pending: counting until settled
    clock.advance(PENDING + 1)
    await app.state.services.reaper.run_once()
    assert await statuses(redis, hold_id, skus) == ["expired"] * 3
    assert await held(client, skus) == [0, 0, 0]
    got = (await client.get(f"/v1/holds/{hold_id}")).json()
    assert (got["status"], len(got["lines"])) == ("expired", 3)  # as any expired hold
    assert (
        sorted(await events_of(redis, hold_id, skus))
        == ["hold.expired"] * 3 + ["hold.reserved"] * 3
    )


async def test_a_coordinator_dead_after_confirming_the_home_part_leaves_every_part_active(
    client: httpx.AsyncClient, app: FastAPI, clock: ManualClock, redis: Redis, crash: Any
) -> None:
    skus = cart_skus("die1")
    await seed(client, {(s, "dc"): 5 for s in skus})
    await create_dies(client, skus, crash, lambda hold_id, p: p != home_partition(hold_id))
    hold_id = await the_hold_id(redis, skus)
    assert (await statuses(redis, hold_id, skus))[0] == "active"
    clock.advance(PENDING + 1)  # past the deadline: still counting (grace), still reserved
    assert await held(client, skus) == [1, 2, 3]
    await app.state.services.reaper.run_once()
    assert await statuses(redis, hold_id, skus) == ["active"] * 3
    got = (await client.get(f"/v1/holds/{hold_id}")).json()
    assert got["status"] == "active"
    assert sorted((x["sku"], x["quantity"]) for x in got["lines"]) == sorted(
        zip(skus, [1, 2, 3], strict=True)
    )
    assert (await act(client, hold_id, "commit")).status_code == 200
    assert [(await position(client, s, "dc"))["committed"] for s in skus] == [1, 2, 3]


@pytest.mark.parametrize("outcome", ["released", "active"])
async def test_a_get_settles_a_hold_its_coordinator_left_between_the_phases(
    client: httpx.AsyncClient, clock: ManualClock, redis: Redis, crash: Any, outcome: str
) -> None:
    skus = cart_skus(f"get-{outcome}")
    await seed(client, {(s, "dc"): 5 for s in skus})
    home_confirmed = outcome == "active"
    await create_dies(
        client, skus, crash, lambda hold_id, p: not home_confirmed or p != home_partition(hold_id)
    )
    hold_id = await the_hold_id(redis, skus)
    if home_confirmed:  # a decided home: a read settles at once, no deadline to wait for
        got = (await client.get(f"/v1/holds/{hold_id}")).json()
        assert (got["status"], len(got["lines"])) == ("active", 3)
        assert await held(client, skus) == [1, 2, 3]
    else:  # undecided: not shown until its deadline, then rolled back
        assert (await client.get(f"/v1/holds/{hold_id}")).status_code == 404
        clock.advance(PENDING + 1)
        got = (await client.get(f"/v1/holds/{hold_id}")).json()
        assert got["status"] == "expired"
        assert await held(client, skus) == [0, 0, 0]
    expected = "active" if home_confirmed else "expired"
    assert await statuses(redis, hold_id, skus) == [expected] * 3


async def test_a_part_confirmed_before_its_home_part_is_rolled_back_with_it(
    client: httpx.AsyncClient, app: FastAPI, clock: ManualClock, redis: Redis, crash: Any
) -> None:
    """Not an order the coordinator takes, but a confirmed part never outvotes its home."""
    skus = cart_skus("die2")
    await seed(client, {(s, "dc"): 5 for s in skus})
    await create_dies(client, skus, crash, lambda hold_id, p: True)
    hold_id = await the_hold_id(redis, skus)
    service = holds_of(app)
    p1 = keys.partition_of(skus[1])
    assert (await service.transition_part(hold_id, p1, Transition.CONFIRM))[0] == Reply.OK
    clock.advance(PENDING + 1)
    await app.state.services.reaper.run_once()
    assert await statuses(redis, hold_id, skus) == ["expired"] * 3
    assert await held(client, skus) == [0, 0, 0]


async def test_a_late_home_reservation_meets_a_tombstone_and_the_hold_stays_released(
    client: httpx.AsyncClient, app: FastAPI, clock: ManualClock, redis: Redis
) -> None:
    """The home part's reservation never arrived: a part pending past its deadline writes the
    home part's decision (expired) first, so nothing can confirm the hold later."""
    skus = cart_skus("late")
    await seed(client, {(s, "dc"): 5 for s in skus})
    created = await hold(client, cart(skus))
    hold_id = created["id"]
    # rebuild the state "home never reserved, others pending": release, then reserve 2 parts
    assert (await act(client, hold_id, "release")).status_code == 200
    for s in skus:
        await redis.delete(keys.hold(keys.partition_of(s), hold_id))
    service = holds_of(app)
    header = _header(hold_id, skus)
    from app.domain.sourcing import Part

    for s, q in zip(skus[1:], [2, 3], strict=True):
        line = _line(s, q)
        reply = await service._reserve(
            header, Part(keys.partition_of(s), [line]), HoldStatus.PENDING, False, ["dc"]
        )
        assert reply.kind == "ok"
    clock.advance(PENDING + 1)
    await app.state.services.reaper.run_once()
    assert await statuses(redis, hold_id, skus) == ["expired"] * 3
    assert await held(client, skus) == [0, 0, 0]
    late = await service._reserve(
        header,
        Part(keys.partition_of(skus[0]), [_line(skus[0], 1)]),
        HoldStatus.PENDING,
        False,
        ["dc"],
    )
    assert (late.kind, late.data) == ("exists", "expired")


def _line(sku: str, q: int) -> Any:
    from app.domain.models import HoldLineIn

    return HoldLineIn(sku=sku, quantity=q, location="dc")


def _header(hold_id: str, skus: list[str]) -> Any:
    from app.domain.holds import _Header

    return _Header(
        hold_id=hold_id,
        channel="web",
        reference="",
        ttl_ms=900_000,
        parts=",".join(str(keys.partition_of(s)) for s in skus),
        owner="",
    )


async def test_a_release_of_a_hold_whose_home_part_lapsed_returns_every_part_s_units(
    client: httpx.AsyncClient, app: FastAPI, clock: ManualClock, redis: Redis
) -> None:
    """An extend interrupted after the other parts: the home part lapses at its old expiry."""
    skus = cart_skus("lapse")
    await seed(client, {(s, "dc"): 5 for s in skus})
    hold_id = (await hold(client, cart(skus), ttl_seconds=60))["id"]
    service = holds_of(app)
    for s in skus[1:]:
        reply = await service.transition_part(
            hold_id, keys.partition_of(s), Transition.EXTEND, ttl_ms=600_000
        )
        assert reply[0] == Reply.OK
    clock.advance(120)
    r = await act(client, hold_id, "release")
    assert r.status_code == 409
    assert await held(client, skus) == [0, 0, 0]
    assert await statuses(redis, hold_id, skus) == ["expired"] * 3


async def test_the_audit_finds_parts_that_do_not_follow_their_home_and_repairs_them(
    client: httpx.AsyncClient, app: FastAPI, clock: ManualClock, redis: Redis, crash: Any
) -> None:
    skus = cart_skus("audit")
    await seed(client, {(s, "dc"): 5 for s in skus})
    await create_dies(client, skus, crash, lambda hold_id, p: p != home_partition(hold_id))
    hold_id = await the_hold_id(redis, skus)
    auditor = Auditor(redis, Scripts.register(redis), clock, parts_grace=0.05)
    parts = sorted({keys.partition_of(s) for s in skus})
    report = await auditor.audit(parts)
    (finding,) = report.findings
    assert (finding.kind, finding.hold, finding.fixable) == ("hold_parts_unsettled", hold_id, True)
    changes = await auditor.settle_parts(report.findings, holds_of(app).settle)
    assert changes == [{"kind": "settled", "hold": hold_id, "status": "active"}]
    assert (await auditor.audit(parts)).clean
    assert await statuses(redis, hold_id, skus) == ["active"] * 3


async def test_a_keyed_retry_after_the_home_part_decided_answers_every_line_reserved(
    client: httpx.AsyncClient, redis: Redis, clock: ManualClock, crash: Any
) -> None:
    skus = cart_skus("retry")
    await seed(client, {(s, "dc"): 5 for s in skus})
    await create_dies(
        client,
        skus,
        crash,
        lambda hold_id, p: p != home_partition(hold_id),
        headers={"Idempotency-Key": "cart-r"},
    )
    clock.advance(PENDING + 1)  # past the deadline and the claim's lease
    body = {"channel": "web", "lines": cart(skus)}
    r = await client.post("/v1/holds", json=body, headers={"Idempotency-Key": "cart-r"})
    assert r.status_code == 201, r.text
    assert (r.json()["status"], len(r.json()["lines"])) == ("active", 3)
    assert await held(client, skus) == [1, 2, 3]


@pytest.mark.slow
async def test_many_coordinators_dying_at_random_points_oversell_nothing_and_hold_nothing(
    client: httpx.AsyncClient, app: FastAPI, clock: ManualClock, redis: Redis, crash: Any
) -> None:
    skus = skus_in_distinct_partitions(4, "storm")
    await seed(client, {(s, "dc"): 20 for s in skus})
    rng = random.Random(7)
    crash(lambda hold_id, p: rng.random() < 0.3)

    async def one(i: int) -> int:
        chosen = rng.sample(skus, 2)
        r = await client.post(
            "/v1/holds",
            json={"channel": "web", "lines": [{"sku": s, "quantity": 1} for s in chosen]},
        )
        if r.status_code == 201 and i % 3 == 0:
            await act(client, r.json()["id"], "release")
        return r.status_code

    codes = await asyncio.gather(*(one(i) for i in range(120)))
    crash(lambda hold_id, p: False)
    assert set(codes) <= {201, 409, 503}
    clock.advance(PENDING + 1)
    await app.state.services.reaper.run_once()
    # every hold's parts agree, none pending; counters equal the live records
    by_hold: dict[str, set[str]] = {}
    units: dict[str, int] = dict.fromkeys(skus, 0)
    for s in skus:
        async for key in redis.scan_iter(match=f"os:{{{keys.partition_of(s):03d}}}:hold:*"):
            record: Any = await redis.hgetall(key)
            by_hold.setdefault(key.rsplit(":", 1)[1], set()).add(record["status"])
            if record["status"] == "active":
                for line in orjson.loads(record["lines"]):
                    units[line["sku"]] += line["quantity"]
    assert all(len(st) == 1 and "pending" not in st for st in by_hold.values()), by_hold
    for s in skus:
        p = await position(client, s, "dc")
        assert p["held"] == units[s] <= 20
        assert p["available"] == 20 - units[s]
    report = await Auditor(redis, Scripts.register(redis), clock, parts_grace=0.05).audit(
        sorted({keys.partition_of(s) for s in skus})
    )
    assert report.clean, report.findings
