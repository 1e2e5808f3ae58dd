"""Each reply listed in a script's header, produced by calling the script itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from app import keys
from app.store.scripts import Scripts

SKU = "lua-sku"
P = keys.partition_of(SKU)
NOW = 0  # the clock offset: scripts read the store's TIME (lua/includes/clock.lua)
RETENTION_MS = 86_400_000
NO_CHANNELS = b"{}"


@pytest.fixture
async def scripts(redis: Redis) -> AsyncIterator[Scripts]:
    yield Scripts.register(redis)


async def set_stock(scripts: Scripts, on_hand: int, marker: str = "-", marker_ttl: int = 0) -> Any:
    return await scripts.stock_set(
        keys=[*keys.sku_keys(P, SKU), keys.events(P), keys.skus(P), keys.op_marker(P, marker)],
        args=[NOW, SKU, "dc", on_hand, "", RETENTION_MS, marker_ttl, NO_CHANNELS],
    )


async def reserve(scripts: Scripts, hold_id: str, qty: int, ttl_ms: int = 60_000) -> Any:
    return await scripts.hold_reserve(
        keys=[keys.hold(P, hold_id), keys.expiry_index(P), keys.events(P), *keys.sku_keys(P, SKU)],
        args=[
            NOW,
            hold_id,
            "active",
            ttl_ms,
            0,
            "",
            "",
            str(P),
            "0",
            RETENTION_MS,
            orjson.dumps([{"s": 1, "q": qty, "l": "dc"}]),
            orjson.dumps([SKU]),
            orjson.dumps([]),
            "",
            NO_CHANNELS,
            "client-a",
        ],
    )


async def transition(
    scripts: Scripts, name: str, hold_id: str, now: int = NOW, marker_ttl: int = 0, *extra: Any
) -> Any:
    script = getattr(scripts, name)
    return await script(
        keys=[
            keys.hold(P, hold_id),
            keys.expiry_index(P),
            keys.events(P),
            keys.op_marker(P, "m-" + name),
            *keys.sku_keys(P, SKU),
        ],
        args=[now, hold_id, RETENTION_MS, 60, orjson.dumps([SKU]), marker_ttl, NO_CHANNELS, *extra],
    )


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


async def test_hold_reserve_replies_exists_for_a_known_hold_id(scripts: Scripts) -> None:
    await set_stock(scripts, 5)
    await reserve(scripts, "h1", 2)
    assert await reserve(scripts, "h1", 2) == ["exists", "active"]


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
    (row,) = await scripts.availability(
        keys=[keys.position(P, SKU), keys.hold_expiry_by_sku(P, SKU)], args=[NOW + 5_000]
    )
    assert row == ["dc", 5, 2, 0, 0, 3]
    (row,) = await scripts.availability(
        keys=[keys.position(P, SKU), keys.hold_expiry_by_sku(P, SKU)], args=[NOW + 10_000]
    )
    assert row == ["dc", 5, 0, 0, 0, 5]


@pytest.mark.parametrize(
    "name",
    [
        "hold_commit",
        "hold_fulfil",
        "hold_release",
        "hold_extend",
        "hold_confirm",
        "hold_abort",
        "hold_rollback",
        "hold_expire",
    ],
)
async def test_transitions_reply_not_found_for_an_unknown_hold(scripts: Scripts, name: str) -> None:
    assert await transition(scripts, name, "nope", NOW, 0, NOW) == ["not_found"]


async def test_commit_replies_ok_then_invalid_on_a_second_commit(scripts: Scripts) -> None:
    await set_stock(scripts, 5)
    await reserve(scripts, "h1", 2)
    assert await transition(scripts, "hold_commit", "h1") == ["ok", "committed"]
    assert await transition(scripts, "hold_commit", "h1") == ["invalid", "committed"]


async def test_commit_replies_replayed_when_its_marker_exists(scripts: Scripts) -> None:
    await set_stock(scripts, 5)
    await reserve(scripts, "h1", 2)
    assert await transition(scripts, "hold_commit", "h1", NOW, 60) == ["ok", "committed"]
    assert await transition(scripts, "hold_commit", "h1", NOW, 60) == ["replayed", "committed"]


async def test_commit_of_a_lapsed_hold_replies_expired_and_returns_its_units(
    scripts: Scripts, redis: Redis
) -> None:
    await set_stock(scripts, 5)
    await reserve(scripts, "h1", 2, ttl_ms=10)
    assert await transition(scripts, "hold_commit", "h1", NOW + 10) == ["expired"]
    assert await redis.hget(keys.hold(P, "h1"), "status") == "expired"
    assert await redis.hget(keys.position(P, SKU), "dc") == "5:0:0:0"


async def test_transition_replies_keys_mismatch_when_a_skus_keys_are_missing(
    scripts: Scripts,
) -> None:
    await set_stock(scripts, 5)
    await reserve(scripts, "h1", 2)
    reply = await scripts.hold_commit(
        keys=[keys.hold(P, "h1"), keys.expiry_index(P), keys.events(P), keys.op_marker(P, "-")],
        args=[NOW, "h1", RETENTION_MS, 60, orjson.dumps([]), 0, NO_CHANNELS],
    )
    assert reply == ["keys_mismatch"]


async def test_expire_replies_not_due_for_a_hold_that_still_counts(scripts: Scripts) -> None:
    await set_stock(scripts, 5)
    await reserve(scripts, "h1", 2)
    assert await transition(scripts, "hold_expire", "h1") == ["not_due", "active"]


async def test_expire_twice_expires_once(scripts: Scripts, redis: Redis) -> None:
    await set_stock(scripts, 5)
    await reserve(scripts, "h1", 2, ttl_ms=10)
    assert await transition(scripts, "hold_expire", "h1", NOW + 20) == ["expired"]
    assert await transition(scripts, "hold_expire", "h1", NOW + 20) == ["not_due", "expired"]
    assert await redis.hget(keys.position(P, SKU), "dc") == "5:0:0:0"


async def test_idempotency_claim_replies_claimed_in_use_done_and_reused(scripts: Scripts) -> None:
    record = keys.idempotency(keys.tag(P), "d" * 64)

    async def claim(fingerprint: str, now: int) -> Any:
        return await scripts.idempotency_claim(
            keys=[record], args=[now, "", "", fingerprint, 1000, 60]
        )

    assert await claim("f1", NOW) == ["claimed"]
    assert await claim("f1", NOW + 1) == ["idem", "in_use"]
    assert await claim("f2", NOW + 1) == ["idem", "reused"]
    assert await claim("f1", NOW + 1001) == ["claimed"]  # the lease ran out: taken over
    complete = scripts.idempotency_complete
    assert await complete(keys=[record], args=["201", "{}", "f1", 1000, 60]) == ["stored"]
    assert await claim("f1", NOW + 2) == ["idem", "done", "201", "{}"]


async def test_idempotency_claim_with_a_response_claims_and_stores_it(scripts: Scripts) -> None:
    record = keys.idempotency(keys.tag(P), "c" * 64)
    args: list[Any] = ["f1", 1000, 60]
    stored = await scripts.idempotency_claim(keys=[record], args=[NOW, "404", "{}", *args])
    assert stored == ["stored"]
    again = await scripts.idempotency_claim(keys=[record], args=[NOW, "", "", *args])
    assert again == ["idem", "done", "404", "{}"]


async def test_idempotency_complete_replies_released_and_not_claimed(scripts: Scripts) -> None:
    record = keys.idempotency(keys.tag(P), "e" * 64)
    await scripts.idempotency_claim(keys=[record], args=[NOW, "", "", "f1", 1000, 60])
    complete = scripts.idempotency_complete
    assert await complete(keys=[record], args=["200", "{}", "f2", 1000, 60]) == ["not_claimed"]
    assert await complete(keys=[record], args=["", "", "f1", 1000, 60]) == ["released"]


async def test_config_put_replies_the_new_version(scripts: Scripts) -> None:
    first = await scripts.config_put(keys=[keys.LOCATIONS, keys.CONFIG_VERSION], args=["a", "{}"])
    second = await scripts.config_put(keys=[keys.LOCATIONS, keys.CONFIG_VERSION], args=["b", "{}"])
    assert second == first + 1


async def test_stock_events_reply_applied_then_duplicate(scripts: Scripts) -> None:
    await set_stock(scripts, 5)

    async def send(q: int = 2) -> Any:
        return await scripts.stock_events(
            keys=[
                keys.events(P),
                keys.skus(P),
                *keys.sku_keys(P, SKU),
                *keys.event_seen_keys(P, "dc", "e1"),
            ],
            args=[
                NOW,
                RETENTION_MS,
                60,
                NO_CHANNELS,
                orjson.dumps([SKU]),
                orjson.dumps([{"i": "e1", "t": "sale", "s": 1, "l": "dc", "q": q, "f": f"q{q}"}]),
            ],
        )

    assert await send() == [["applied", 3, 0, 0, 0, 3]]
    assert await send() == [["duplicate", 3, 0, 0, 0, 3]]
    assert await send(q=5) == [["id_reused", 3, 0, 0, 0, 3]]


async def test_event_claim_replies_the_first_content_claimed(scripts: Scripts) -> None:
    claim = keys.event_claim("dc", "e1")
    assert await scripts.event_claim(keys=[claim], args=["sale|A|1", 60]) == "sale|A|1"
    assert await scripts.event_claim(keys=[claim], args=["sale|A|1", 60]) == "sale|A|1"
    assert await scripts.event_claim(keys=[claim], args=["sale|B|1", 60]) == "sale|A|1"
