"""The stock rules Python shares with Lua, checked on the same generated data: the batch read's
available (app/domain/stock.py `_view_row`, run by the MULTI/EXEC path) against
availability.lua (position.lua's pos_available), and `stock_status` against channels.lua's."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from app import keys
from app.domain import sourcing
from app.domain.channel_rules import channel_figure, script_entry
from app.domain.clock import StoreClock
from app.domain.config import ConfigService
from app.domain.models import BufferPercent, BufferUnits, Channel
from app.domain.stock import StockService, stock_status
from app.settings import Settings
from app.store import calls
from app.store.scripts import Scripts, expand, lua_dir
from tests.lua.helpers import reserve_call

SKUS = [f"rule-sku-{i}" for i in range(60)]
LOCATIONS = ["dc", "store-1", "store-2"]
LAPSED, COUNTING = 1_000, 2**52  # hold line scores: long past, far future (ms)


def services(redis: Redis) -> tuple[Scripts, StockService]:
    scripts = Scripts.register(redis)
    config = ConfigService(redis, scripts, 60.0)
    return scripts, StockService(redis, scripts, config, Settings(), StoreClock())


async def channels_lua(redis: Redis, expression: str, cases: list[list[Any]]) -> Any:
    """`expression` of each case `c` (an array) evaluated by a script that includes
    channels.lua, as the scripts of lua/ see it."""
    main = (
        "local rcall = redis.call\n--!include channels.lua\n"
        "local out = {}\n"
        "for i, c in ipairs(cjson.decode(ARGV[1])) do\n"
        f"  out[i] = {expression}\nend\nreturn out\n"
    )

    def read(path: str) -> str:
        return main if path == "probe.lua" else (lua_dir() / path).read_text()

    return await redis.eval(expand("probe", read).text, 0, orjson.dumps(cases))


def free_units(skus: list[str], rows: list[list[Any]]) -> dict[str, dict[str, Any]]:
    """{sku: {location: free units}} of StockService.read_rows' rows (6 fields a location)."""
    return {
        sku: {row[i]: row[i + 5] for i in range(0, len(row), 6)}
        for sku, row in zip(skus, rows, strict=True)
    }


async def seed(redis: Redis, rnd: random.Random) -> dict[str, int]:
    """Random positions (negative available included) and hold lines, some lapsed; returns
    how often the cases that make the rule more than a subtraction occur."""
    cases = {"clamped": 0, "lapsed": 0, "positive": 0}
    for sku in SKUS:
        p = keys.partition_of(sku)
        await redis.delete(keys.position(p, sku), keys.hold_line_index(p, sku))
        lapsed: dict[str, int] = defaultdict(int)
        for n in range(rnd.randint(0, 4)):  # fewer than a batch page (_LAPSED_PAGE)
            loc, qty = rnd.choice(LOCATIONS), rnd.randint(1, 6)
            score = rnd.choice([LAPSED, COUNTING])
            member = f"{1000 + n:016d}|h{n}|{loc}|{qty}"  # order|hold|location|qty
            await redis.zadd(keys.hold_line_index(p, sku), {member: score})
            if score == LAPSED:
                lapsed[loc] += qty
        for loc in LOCATIONS:
            if rnd.random() < 0.8:
                o, h, c, s = (rnd.randint(-5, 30), rnd.randint(0, 20), rnd.randint(0, 6),
                              rnd.randint(0, 5))  # fmt: skip
                h += lapsed[loc]
                await redis.hset(keys.position(p, sku), loc, f"{o}:{h}:{c}:{s}")
                raw = o - (h - lapsed[loc]) - c - s
                cases["clamped"] += raw < 0
                cases["positive"] += raw > 0
                cases["lapsed"] += lapsed[loc] > 0 and raw + lapsed[loc] > 0
    return cases


@pytest.mark.parametrize("supply", [False, True], ids=["positions", "with-supply"])
@pytest.mark.parametrize("locations", [[], [*LOCATIONS, "nowhere"]])
async def test_batch_read_available_matches_availability_script(
    redis: Redis, locations: list[str], supply: bool
) -> None:
    cases = await seed(redis, random.Random(12))
    assert all(n > 5 for n in cases.values()), cases  # the data exercises every branch
    scripts, stock = services(redis)
    by_partition: dict[int, list[str]] = defaultdict(list)
    for sku in SKUS:
        by_partition[keys.partition_of(sku)].append(sku)
    python, redo = await stock._transaction(by_partition, 0, locations, supply)
    assert redo == {}  # every row was computed in Python, none handed to the script
    compared = 0
    for p, group in by_partition.items():
        lua = await scripts.run(calls.availability(p, group, locations, supply=supply))
        assert [python[sku] for sku in group] == lua, group
        compared += sum(len(item[0] if supply else item) // 6 for item in lua)
    assert compared > 100


async def test_python_stock_status_is_channels_lua_rule(redis: Redis) -> None:
    pairs = [[a, t] for a in range(-3, 14) for t in range(0, 12)]
    lua = await channels_lua(redis, "stock_status(c[1], c[2])", pairs)
    assert lua == [stock_status(a, t) for a, t in pairs]
    assert set(lua) == {"out_of_stock", "low_stock", "in_stock"}


def same_partition_skus(n: int) -> tuple[int, list[str]]:
    by_partition: dict[int, list[str]] = defaultdict(list)
    for i in range(2000):
        sku = f"src-{i}"
        group = by_partition[keys.partition_of(sku)]
        group.append(sku)
        if len(group) == n:
            return keys.partition_of(sku), group
    raise AssertionError("no partition with enough skus")


async def test_multi_partition_plan_sources_as_hold_reserve(redis: Redis) -> None:
    """app/domain/sourcing.py (the plan of a multi-partition hold) against hold_reserve.lua
    without a split, on the same positions: the same single location, or the same shortage."""
    p, skus = same_partition_skus(3)
    scripts, stock = services(redis)
    rnd = random.Random(5)
    outcomes: dict[str, int] = defaultdict(int)
    for case in range(150):
        chosen = rnd.sample(skus, rnd.randint(1, 3))
        for sku in chosen:
            await redis.delete(*keys.sku_keys(p, sku))
            for loc in LOCATIONS:
                if rnd.random() < 0.8:
                    o, h = rnd.randint(0, 12), rnd.randint(0, 4)
                    await redis.hset(keys.position(p, sku), loc, f"{o}:{h}:0:0")
        need = {sku: rnd.randint(1, 8) for sku in chosen}
        candidates = rnd.sample(LOCATIONS, rnd.randint(1, len(LOCATIONS)))

        snapshot = await stock.read_rows(chosen, candidates)
        free = free_units(chosen, snapshot)
        singles = sourcing.single_locations(free, need, candidates)

        hold_id = f"src-hold-{case}"
        lines = [{"s": i + 1, "q": need[sku]} for i, sku in enumerate(chosen)]
        reply = await scripts.run(
            reserve_call(
                partition=p, hold_id=hold_id, skus=chosen, lines=lines, candidates=candidates
            )
        )
        if singles:
            assert reply[0] == "ok", (case, reply, free, need, candidates)
            assert {line["location"] for line in orjson.loads(reply[1])} == {singles[0]}
            outcomes["single"] += 1
        else:
            assert reply[0] == "insufficient", (case, reply, free, need, candidates)
            expected = sourcing.shortage(free, need)
            assert orjson.loads(reply[1]) == expected, (case, free, need, candidates)
            fits = all(e["available"] >= e["requested"] for e in expected)
            outcomes["no single location" if fits else "short"] += 1
    assert all(outcomes[k] > 10 for k in ("single", "no single location", "short")), outcomes


async def test_multi_partition_capped_plan_sources_as_split_lua(redis: Redis) -> None:
    """sourcing.capped_split (a multi-partition hold's max_locations plan) against
    hold_reserve.lua's capped split (lua/includes/split.lua) on the same positions, where no
    single location serves the hold: the same locations and units, or the same short lines."""
    p, skus = same_partition_skus(3)
    scripts, stock = services(redis)
    rnd = random.Random(14)
    locations = [*LOCATIONS, "store-3", "store-4"]
    outcomes: dict[str, int] = defaultdict(int)
    for case in range(200):
        chosen = rnd.sample(skus, rnd.randint(1, 3))
        for sku in chosen:
            await redis.delete(*keys.sku_keys(p, sku))
            for loc in locations:
                if rnd.random() < 0.7:
                    await redis.hset(keys.position(p, sku), loc, f"{rnd.randint(0, 6)}:0:0:0")
        demand = [(rnd.choice(chosen), rnd.randint(1, 7)) for _ in range(rnd.randint(1, 4))]
        need: dict[str, int] = defaultdict(int)
        for sku, q in demand:
            need[sku] += q
        candidates = rnd.sample(locations, rnd.randint(2, len(locations)))
        cap = rnd.randint(1, 3)
        snapshot = await stock.read_rows(chosen, candidates)
        free = free_units(chosen, snapshot)
        if sourcing.single_locations(free, need, candidates):
            continue  # the script takes one location before any split
        plan, short = sourcing.capped_split(free, demand, candidates, cap)
        index = {sku: i + 1 for i, sku in enumerate(chosen)}
        reply = await scripts.run(
            reserve_call(
                partition=p,
                hold_id=f"cap-hold-{case}",
                skus=chosen,
                lines=[{"s": index[sku], "q": q} for sku, q in demand],
                candidates=candidates,
                allow_split=True,
                max_locations=cap,
            )
        )
        if short:
            assert reply[0] == "insufficient", (case, reply, free, demand, candidates, cap)
            assert orjson.loads(reply[1]) == short, (case, free, demand, candidates, cap)
            outcomes["short"] += 1
        else:
            assert reply[0] == "ok", (case, reply, free, demand, candidates, cap)
            got: dict[str, dict[str, int]] = defaultdict(dict)
            for line in orjson.loads(reply[1]):
                got[line["sku"]][line["location"]] = line["quantity"]
            assert got == plan, (case, free, demand, candidates, cap)
            outcomes["split"] += 1
    assert outcomes["short"] > 10 and outcomes["split"] > 10, outcomes


async def test_python_channel_figure_is_channel_rules_lua_rule(redis: Redis) -> None:
    """app/domain/channel_rules.py's channel_figure against channel_rules.lua's, on the
    channels as scripts get them (script_entry): units, percents (rounding), exclusions."""
    channels = [
        Channel(id="plain", locations=["dc"]),
        Channel(id="ex", locations=["dc"], exclude_skus=["a"]),
        *(Channel(id=f"u{n}", locations=["dc"], buffer=BufferUnits(units=n)) for n in (0, 1, 7)),
        *(
            Channel(
                id=f"p{n}", locations=["dc"], buffer=BufferPercent(percent=n), exclude_skus=["b"]
            )
            for n in (0, 1, 10, 33, 50, 99, 100)
        ),
    ]
    grid = [
        (ch, sku, total)
        for ch in channels
        for sku in ("a", "b", "c")
        for total in [*range(0, 41), 99, 101, 999, 10**12]
    ]
    cases = [[script_entry(ch), sku, total] for ch, sku, total in grid]
    lua = await channels_lua(redis, "channel_figure(c[1], c[2], c[3])", cases)
    assert lua == [channel_figure(ch, sku, total) for ch, sku, total in grid]
    assert len(set(lua)) > 50  # the cases reach many figures, 0 among them
