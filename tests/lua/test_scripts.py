"""Each reply listed in a script's header, produced by calling the script itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import orjson
import pytest
from redis.asyncio import Redis

from app import keys
from app.store import calls
from app.store.calls import Idem, StockEvent, Transition
from app.store.scripts import Scripts
from tests.lua.helpers import reserve_call

SKU = "lua-sku"
P = keys.partition_of(SKU)
NOW = 0  # the clock offset: scripts read the store's TIME (lua/includes/clock.lua)
RETENTION_MS = 86_400_000
NO_CHANNELS = b"{}"


@pytest.fixture
async def scripts(redis: Redis) -> AsyncIterator[Scripts]:
    yield Scripts.register(redis)


async def set_stock(scripts: Scripts, on_hand: int, marker: str = "-", marker_ttl: int = 0) -> Any:
    call = calls.stock_set(
        sku=SKU,
        location="dc",
        on_hand=on_hand,
        safety_stock=None,
        retention_ms=RETENTION_MS,
        channels=NO_CHANNELS,
        op_digest=marker,
        marker_ttl_seconds=marker_ttl,
        offset_ms=NOW,
    )
    return await scripts.run(call)


async def reserve(
    scripts: Scripts, hold_id: str, qty: int, ttl_ms: int = 60_000, idem: Idem | None = None
) -> Any:
    call = reserve_call(
        partition=P,
        hold_id=hold_id,
        skus=[SKU],
        lines=[{"s": 1, "q": qty, "l": "dc"}],
        ttl_ms=ttl_ms,
        retention_ms=RETENTION_MS,
        channels=NO_CHANNELS,
        owner="client-a",
        offset_ms=NOW,
        idem=idem,
    )
    return await scripts.run(call)


async def transition(
    scripts: Scripts,
    script: Transition,
    hold_id: str,
    now: int = NOW,
    marker_ttl: int = 0,
    skus: tuple[str, ...] = (SKU,),
    lines: list[dict[str, Any]] | None = None,
) -> Any:
    """`lines`: hold_lines.lua's release of these units (none given: one unit at dc)."""
    if script is Transition.LINES and lines is None:
        lines = [{"sku": SKU, "location": "dc", "quantity": 1}]
    call = calls.transition(
        script,
        partition=P,
        hold_id=hold_id,
        skus=list(skus),
        retention_ms=RETENTION_MS,
        finished_ttl_seconds=60,
        channels=NO_CHANNELS,
        op_digest="m-" + script,
        marker_ttl_seconds=marker_ttl,
        offset_ms=now,
        ttl_ms=NOW if script is Transition.EXTEND else None,
        lines_op=("release", orjson.dumps(lines)) if lines is not None else None,
    )
    return await scripts.run(call)


async def test_stock_set_replies_ok_with_the_position(scripts: Scripts) -> None:
    assert await set_stock(scripts, 7) == ["ok", 7, 0, 0, 0, 7]


async def test_stock_set_replies_replayed_and_changes_nothing_when_its_marker_exists(
    scripts: Scripts,
) -> None:
    await set_stock(scripts, 7, marker="op1", marker_ttl=60)
    assert await set_stock(scripts, 99, marker="op1", marker_ttl=60) == ["replayed", 7, 0, 0, 0, 7]


async def test_hold_reserve_replies_ok_with_the_sourced_lines(scripts: Scripts) -> None:
    await set_stock(scripts, 5)
    kind, lines, created_at, expires_at = await reserve(scripts, "h1", 2)
    assert kind == "ok"
    assert orjson.loads(lines) == [{"sku": SKU, "location": "dc", "quantity": 2}]
    assert expires_at - created_at == 60_000  # both by the store's clock


async def test_hold_reserve_sources_from_each_calls_own_candidates(scripts: Scripts) -> None:
    # The function library keeps decoded arguments between calls (lua/includes/memo.lua):
    # a call with other candidates must read and source from its own.
    for location in ("dc", "st"):
        call = calls.stock_set(
            sku=SKU,
            location=location,
            on_hand=5,
            safety_stock=None,
            retention_ms=RETENTION_MS,
            channels=NO_CHANNELS,
            op_digest="-",
            marker_ttl_seconds=0,
            offset_ms=NOW,
        )
        await scripts.run(call)
    for hold_id, location in (("h1", "dc"), ("h2", "st"), ("h3", "dc")):
        call = reserve_call(
            partition=P,
            hold_id=hold_id,
            skus=[SKU],
            lines=[{"s": 1, "q": 1}],
            candidates=[location],
        )
        kind, lines, _, _ = await scripts.run(call)
        assert (kind, orjson.loads(lines)[0]["location"]) == ("ok", location)


async def test_hold_reserve_replies_exists_for_a_known_hold_id(scripts: Scripts) -> None:
    await set_stock(scripts, 5)
    await reserve(scripts, "h1", 2)
    assert await reserve(scripts, "h1", 2) == ["exists", "active"]


async def test_a_keyed_hold_reserve_stores_its_response_with_the_change(scripts: Scripts) -> None:
    await set_stock(scripts, 5)
    idem = Idem(keys.idempotency(keys.tag(P), "e" * 64), "f1", 1000, 60)
    _, lines, created_at, expires_at = await reserve(scripts, "h1", 2, idem=idem)
    kind, state, status, body = await reserve(scripts, "h1", 2, idem=idem)
    assert (kind, state, status) == ("idem", "done", "201")
    prefix = "\0hold_created\0"  # the deferred form (lua/includes/idempotency.lua)
    assert body.startswith(prefix)
    assert orjson.loads(body[len(prefix) :]) == [
        "h1",
        "active",
        "",
        "",
        str(created_at),
        str(expires_at),
        lines,
        "",  # no metadata
    ]


async def test_a_keyed_hold_reserve_writes_its_record_done_with_the_claim_s_fields(
    scripts: Scripts, redis: Redis
) -> None:
    # what a claim then a stored response left (idempotency.lua), written at once
    await set_stock(scripts, 5)
    record = keys.idempotency(keys.tag(P), "e" * 64)
    _, _, created_at, _ = await reserve(scripts, "h1", 2, idem=Idem(record, "f1", 1000, 60))
    fields = await redis.hgetall(record)
    assert sorted(fields) == ["body", "fingerprint", "lease_until", "state", "status"]
    assert (fields["state"], fields["fingerprint"], fields["status"]) == ("done", "f1", "201")
    assert int(fields["lease_until"]) == created_at + 1000
    assert 0 < await redis.ttl(record) <= 60


@pytest.mark.parametrize("case", ["insufficient", "exists"])
async def test_a_keyed_hold_reserve_that_creates_nothing_takes_the_claim_in_flight(
    scripts: Scripts, redis: Redis, case: str
) -> None:
    # the service then stores its response in the claim (idempotency_complete.lua)
    await set_stock(scripts, 1 if case == "insufficient" else 5)
    if case == "exists":
        await reserve(scripts, "h1", 2)
    record = keys.idempotency(keys.tag(P), "e" * 64)
    idem = Idem(record, "f1", 60_000, 60)
    assert (await reserve(scripts, "h1", 2, idem=idem))[0] == case
    assert (await redis.hmget(record, "state", "fingerprint")) == ["in_flight", "f1"]
    assert 0 < await redis.ttl(record) <= 60
    assert await reserve(scripts, "h1", 2, idem=idem) == ["idem", "in_use"]
    complete = calls.idempotency_complete(idem, "409", "{}")
    assert await scripts.run(complete) == ["stored"]


async def test_hold_reserve_replies_insufficient_and_writes_nothing(
    scripts: Scripts, redis: Redis
) -> None:
    await set_stock(scripts, 1)
    kind, short = await reserve(scripts, "h1", 2)
    assert kind == "insufficient"
    assert orjson.loads(short) == [{"sku": SKU, "location": "dc", "requested": 2, "available": 1}]
    assert not await redis.exists(keys.hold(P, "h1"))
    assert await redis.hget(keys.position(P, SKU), "dc") == "1:0:0:0"


async def test_availability_leaves_out_lines_of_lapsed_holds(scripts: Scripts) -> None:
    await set_stock(scripts, 5)
    await reserve(scripts, "h1", 2, ttl_ms=10_000)
    (row,) = await scripts.run(calls.availability(P, [SKU], offset_ms=NOW + 5_000))
    assert row == ["dc", 5, 2, 0, 0, 3]
    (row,) = await scripts.run(calls.availability(P, [SKU], offset_ms=NOW + 10_000))
    assert row == ["dc", 5, 0, 0, 0, 5]


@pytest.mark.parametrize(
    "name",
    list(Transition),
)
async def test_transitions_reply_not_found_for_an_unknown_hold(
    scripts: Scripts, name: Transition
) -> None:
    assert await transition(scripts, name, "nope") == ["not_found"]


async def test_hold_lines_releases_units_then_refuses_more_than_open(
    scripts: Scripts, redis: Redis
) -> None:
    await set_stock(scripts, 5)
    await reserve(scripts, "h1", 3)
    two = [{"sku": SKU, "location": "dc", "quantity": 2}]
    assert await transition(scripts, Transition.LINES, "h1", lines=two) == ["ok", "active"]
    assert await redis.hget(keys.position(P, SKU), "dc") == "5:1:0:0"
    order: Any = await redis.hget(keys.hold(P, "h1"), "orders")
    assert await redis.zrange(keys.hold_line_index(P, SKU), 0, -1) == [f"{order}|h1|dc|1"]
    reply = await transition(scripts, Transition.LINES, "h1", lines=two)
    assert reply[0] == "over_quantity" and reply[2] == 1
    other = [{"sku": SKU, "location": "store-a", "quantity": 1}]
    assert (await transition(scripts, Transition.LINES, "h1", lines=other))[0] == "unknown_line"
    assert await transition(scripts, Transition.LINES, "h1") == ["ok", "released"]
    assert await redis.hget(keys.position(P, SKU), "dc") == "5:0:0:0"


async def test_hold_list_reads_records_and_drops_members_whose_record_is_gone(
    scripts: Scripts, redis: Redis
) -> None:
    await set_stock(scripts, 5)
    await reserve(scripts, "h1", 1)
    await reserve(scripts, "h2", 1)
    members = cast(list[str], await redis.zrange(keys.holds_index(P), 0, -1))
    assert [m.split(" ")[0] for m in members] == ["client-a", "client-a"]
    await redis.delete(keys.hold(P, "h1"))
    records = await scripts.run(calls.hold_list(P, members))
    got = {
        m.rsplit(" ", 1)[1]: dict(zip(r[::2], r[1::2], strict=True))
        for m, r in zip(members, records, strict=True)
    }
    assert got["h1"] == {} and got["h2"]["status"] == "active"
    left = cast(list[str], await redis.zrange(keys.holds_index(P), 0, -1))
    assert [m.rsplit(" ", 1)[1] for m in left] == ["h2"]


async def test_commit_replies_ok_then_invalid_on_a_second_commit(scripts: Scripts) -> None:
    await set_stock(scripts, 5)
    await reserve(scripts, "h1", 2)
    assert await transition(scripts, Transition.COMMIT, "h1") == ["ok", "committed"]
    assert await transition(scripts, Transition.COMMIT, "h1") == ["invalid", "committed"]


async def test_commit_replies_replayed_when_its_marker_exists(scripts: Scripts) -> None:
    await set_stock(scripts, 5)
    await reserve(scripts, "h1", 2)
    assert await transition(scripts, Transition.COMMIT, "h1", NOW, 60) == ["ok", "committed"]
    assert await transition(scripts, Transition.COMMIT, "h1", NOW, 60) == ["replayed", "committed"]


async def test_commit_of_a_lapsed_hold_replies_expired_and_returns_its_units(
    scripts: Scripts, redis: Redis
) -> None:
    await set_stock(scripts, 5)
    await reserve(scripts, "h1", 2, ttl_ms=10)
    assert await transition(scripts, Transition.COMMIT, "h1", NOW + 10) == ["expired"]
    assert await redis.hget(keys.hold(P, "h1"), "status") == "expired"
    assert await redis.hget(keys.position(P, SKU), "dc") == "5:0:0:0"


async def test_transition_replies_keys_mismatch_when_a_skus_keys_are_missing(
    scripts: Scripts,
) -> None:
    await set_stock(scripts, 5)
    await reserve(scripts, "h1", 2)
    reply = await transition(scripts, Transition.COMMIT, "h1", skus=())
    assert reply == ["keys_mismatch"]


async def test_expire_replies_not_due_for_a_hold_that_still_counts(scripts: Scripts) -> None:
    await set_stock(scripts, 5)
    await reserve(scripts, "h1", 2)
    assert await transition(scripts, Transition.EXPIRE, "h1") == ["not_due", "active"]


async def test_expire_twice_expires_once(scripts: Scripts, redis: Redis) -> None:
    await set_stock(scripts, 5)
    await reserve(scripts, "h1", 2, ttl_ms=10)
    assert await transition(scripts, Transition.EXPIRE, "h1", NOW + 20) == ["expired"]
    assert await transition(scripts, Transition.EXPIRE, "h1", NOW + 20) == ["not_due", "expired"]
    assert await redis.hget(keys.position(P, SKU), "dc") == "5:0:0:0"


async def test_idempotency_claim_replies_claimed_in_use_done_and_reused(scripts: Scripts) -> None:
    record = keys.idempotency(keys.tag(P), "d" * 64)

    async def claim(fingerprint: str, now: int) -> Any:
        return await scripts.run(calls.idempotency_claim(Idem(record, fingerprint, 1000, 60), now))

    assert await claim("f1", NOW) == ["claimed"]
    assert await claim("f1", NOW + 1) == ["idem", "in_use"]
    assert await claim("f2", NOW + 1) == ["idem", "reused"]
    assert await claim("f1", NOW + 1001) == ["claimed"]  # the lease ran out: taken over
    complete = calls.idempotency_complete(Idem(record, "f1", 1000, 60), "201", "{}")
    assert await scripts.run(complete) == ["stored"]
    assert await claim("f1", NOW + 2) == ["idem", "done", "201", "{}"]


async def test_idempotency_claim_with_a_response_claims_and_stores_it(scripts: Scripts) -> None:
    record = keys.idempotency(keys.tag(P), "c" * 64)
    idem = Idem(record, "f1", 1000, 60)
    stored = await scripts.run(calls.idempotency_claim(idem, NOW, "404", "{}"))
    assert stored == ["stored"]
    again = await scripts.run(calls.idempotency_claim(idem, NOW))
    assert again == ["idem", "done", "404", "{}"]


async def test_idempotency_complete_replies_released_and_not_claimed(scripts: Scripts) -> None:
    record = keys.idempotency(keys.tag(P), "e" * 64)
    await scripts.run(calls.idempotency_claim(Idem(record, "f1", 1000, 60), NOW))
    other = calls.idempotency_complete(Idem(record, "f2", 1000, 60), "200", "{}")
    assert await scripts.run(other) == ["not_claimed"]
    give_up = calls.idempotency_complete(Idem(record, "f1", 1000, 60), "", "")
    assert await scripts.run(give_up) == ["released"]


async def test_config_put_replies_the_new_version(scripts: Scripts) -> None:
    first = await scripts.run(calls.config_put(keys.LOCATIONS, "a", "{}"))
    second = await scripts.run(calls.config_put(keys.LOCATIONS, "b", "{}"))
    assert second == first + 1


async def test_stock_events_reply_applied_then_duplicate(scripts: Scripts) -> None:
    await set_stock(scripts, 5)

    async def send(q: int = 2) -> Any:
        event = StockEvent("e1", "sale", SKU, "dc", q, f"q{q}")
        call = calls.stock_events(
            P, [event], retention_ms=RETENTION_MS, dedupe_seconds=60, channels=NO_CHANNELS
        )
        return await scripts.run(call)

    assert await send() == [["applied", 3, 0, 0, 0, 3]]
    assert await send() == [["duplicate", 3, 0, 0, 0, 3]]
    assert await send(q=5) == [["id_reused", 3, 0, 0, 0, 3]]


async def test_event_claim_replies_the_first_content_claimed(scripts: Scripts) -> None:
    for fingerprint in ("sale|A|1", "sale|A|1", "sale|B|1"):
        claimed = await scripts.run(calls.event_claim("dc", "e1", fingerprint, 60))
        assert claimed == "sale|A|1"
