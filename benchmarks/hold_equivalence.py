"""The hold scripts of git HEAD vs lua/ as they are now, on the same random operations:
`python -m benchmarks.hold_equivalence [--ops N] [--seed S] [--old DIR]`.

Two private stores, one per variant; each step runs on both and their replies and every key's
contents must match: positions, hold records, expiry indexes, the streams' entries (fields
only: entry ids come from each store's clock, and so do the `ho` scores made from them, so
those compare members only). Steps: random position values (held, committed, safety stock,
negative availability), and holds of 1..4 lines over 3 skus, pinned or not, with and without
split, over random candidates and 0..3 channels with random thresholds and locations, some
counting until the past (lapsed at once), some reusing a hold id; and, on recent holds, the
transitions (commit, fulfil, release, extend, expire, confirm, abort, rollback) and stock_set.
An event's `channels` compare as JSON: the same entries in the same order, their keys in any
order (before event.lua, emit_change() wrote them in cjson's table order).
"""

from __future__ import annotations

import argparse
import random
import sys
from typing import Any

import orjson

from app import keys
from app.store import calls
from app.store.calls import HoldStatus
from benchmarks import harness as h
from benchmarks.lua_micro import variant_sources

LOCS = ["dc-1", "store-1", "store-2", "store-3", "store-4"]
SKUS = ["SKU-A", "SKU-B", "SKU-C"]
P = 7


# Instants the script takes from its store's TIME (lua/includes/clock.lua): two stores never
# agree on them to the ms, so they are left out of the comparison.
CLOCK_FIELDS = {b"created_at", b"updated_at", b"expires_at", b"count_until", b"deadline", b"at"}


def dump(r: Any) -> dict[bytes, Any]:
    out: dict[bytes, Any] = {}
    for k in sorted(r.keys("*")):
        t = r.type(k)
        if t == b"hash":
            out[k] = sorted((f, v) for f, v in r.hgetall(k).items() if f not in CLOCK_FIELDS)
        elif t == b"zset":
            out[k] = sorted(m for m in r.zrange(k, 0, -1))  # scores are instants
        elif t == b"stream":
            out[k] = [
                {
                    f: orjson.loads(v) if f == b"channels" else v
                    for f, v in fields.items()
                    if f not in CLOCK_FIELDS
                }
                for _, fields in r.xrange(k)
            ]
        elif t == b"string":
            out[k] = r.get(k)
        else:
            out[k] = t
    return out


SCRIPTS = (
    "hold_reserve",
    "stock_set",
    "hold_commit",
    "hold_fulfil",
    "hold_release",
    "hold_extend",
    "hold_expire",
    "hold_confirm",
    "hold_abort",
    "hold_rollback",
)


def random_channels(rnd: random.Random) -> dict[str, Any]:
    return {
        f"ch{c}": [rnd.randint(0, 10), rnd.sample(LOCS, rnd.randint(1, len(LOCS)))]
        for c in range(rnd.randint(0, 3))
    }


def transition(
    run: Any, step: int, rnd: random.Random, now: int, skus_of: dict[str, list[str]]
) -> None:
    """One transition script on a recent hold (the transition layout, lua/includes/
    transition.lua), with a marker sometimes, and ARGV[8] where the script takes one."""
    hold_id = rnd.choice(list(skus_of)[-6:])
    skus = skus_of[hold_id]
    name = rnd.choice(SCRIPTS[2:])
    ks = [keys.hold(P, hold_id), keys.expiry_index(P), keys.events(P), keys.op_marker(P, hold_id)]
    for sku in skus:
        ks += keys.sku_keys(P, sku)
    marker_ttl = rnd.choice([0, 0, 60])
    channels = orjson.dumps(random_channels(rnd))
    argv: list[Any] = [now, hold_id, 86_400_000, 3600, orjson.dumps(skus), marker_ttl, channels]
    if name == "hold_extend":
        argv.append(rnd.choice([2_500, 900_000]))
    elif name == "hold_rollback":
        argv.append("")
    run(step, name, ks, argv)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--old", default="head", help="head (git HEAD's lua/) or a directory laid out like lua/"
    )
    args = parser.parse_args()
    rnd = random.Random(args.seed)
    sources = {"head": variant_sources(args.old), "work": variant_sources("work")}
    with h.store(fsync="no") as s1, h.store(fsync="no") as s2:
        stores = {"head": h.client(s1), "work": h.client(s2)}
        shas = {v: {n: stores[v].script_load(sources[v][n]) for n in SCRIPTS} for v in stores}
        now = 0  # the clock offset: each store's TIME moves on by itself
        ids: list[str] = []
        skus_of: dict[str, list[str]] = {}
        kinds: dict[str, int] = {}

        def run(step: int, name: str, ks: list[Any], argv: list[Any]) -> Any:
            replies = {}
            for v, r in stores.items():
                try:
                    replies[v] = r.evalsha(shas[v][name], len(ks), *ks, *argv)
                except Exception as e:  # compared, not handled
                    replies[v] = ("error", str(e).split(" script:")[0])
            kind = f"{name}:{replies['head'][0]!s}"
            kinds[kind] = kinds.get(kind, 0) + 1
            # hold_reserve's [2:] are instants (created, expires)
            same = replies["head"][:2] == replies["work"][:2]
            if not same if name == "hold_reserve" else replies["head"] != replies["work"]:
                sys.exit(f"step {step}: {name} replies differ\n{argv}\n{replies}")
            return replies["head"]

        for step in range(args.ops):
            now += rnd.choice([0, 1000, 60_000])  # TTLs below stay 500 ms off these steps
            if skus_of and rnd.random() < 0.3:
                transition(run, step, rnd, now, skus_of)
                continue
            if rnd.random() < 0.05:
                sku, loc = rnd.choice(SKUS), rnd.choice(LOCS)
                ks = [*keys.sku_keys(P, sku), keys.events(P), keys.skus(P), keys.op_marker(P, "-")]
                safety = rnd.choice(["", "1"])
                channels = orjson.dumps(random_channels(rnd))
                argv = [now, sku, loc, rnd.randint(-2, 30), safety, 86_400_000, 0, channels]
                run(step, "stock_set", ks, argv)
                continue
            if rnd.random() < 0.15:
                sku, loc = rnd.choice(SKUS), rnd.choice(LOCS)
                value = ":".join(
                    str(x)
                    for x in (
                        rnd.randint(0, 30),
                        rnd.randint(0, 10),
                        rnd.randint(0, 3),
                        rnd.randint(0, 3),
                    )
                )
                for r in stores.values():
                    r.hset(keys.position(P, sku), loc, value)
                continue
            nlines = rnd.choice([1, 1, 1, 2, 3, 4])
            skus = rnd.sample(SKUS, rnd.randint(1, min(nlines, 3)))
            lines = []
            for i in range(nlines):
                line: dict[str, Any] = {"s": 1 + (i % len(skus)), "q": rnd.randint(1, 8)}
                if rnd.random() < 0.3:
                    line["l"] = rnd.choice(LOCS)
                lines.append(line)
            candidates = rnd.sample(LOCS, rnd.randint(0, len(LOCS)))
            hold_channels = random_channels(rnd)
            hold_id = rnd.choice(ids) if ids and rnd.random() < 0.05 else f"h{step}"
            ids.append(hold_id)
            ttl = rnd.choice([-5_000, 0, 2_500, 900_000])
            call = calls.hold_reserve(
                partition=P,
                hold_id=hold_id,
                status=rnd.choice([HoldStatus.ACTIVE, HoldStatus.PENDING]),
                ttl_ms=ttl,
                pending_ttl_ms=30_000,
                channel=rnd.choice(["web", ""]),
                reference=rnd.choice(["", "ref-1"]),
                parts=str(P),
                allow_split=rnd.choice([False, True]),
                retention_ms=86_400_000,
                lines=lines,
                skus=skus,
                candidates=candidates,
                channels=orjson.dumps(hold_channels),
                owner="web-shop",
                pending_grace_ms=0,
                offset_ms=now,
            )
            if run(step, "hold_reserve", call.keys, call.args)[0] == b"ok":
                skus_of[hold_id] = skus
            if step % 25 == 0 or step == args.ops - 1:
                a, b = dump(stores["head"]), dump(stores["work"])
                if a != b:
                    diff = [k for k in set(a) | set(b) if a.get(k) != b.get(k)]
                    where = [(k, a.get(k), b.get(k)) for k in diff[:2]]
                    sys.exit(f"step {step}: stores differ at {where}")
        print(f"{args.ops} steps, same replies and stores; replies by kind: {kinds}")


if __name__ == "__main__":
    main()
