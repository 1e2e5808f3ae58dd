"""hold_reserve.lua of git HEAD vs lua/ as it is now, on the same random operations:
`python -m benchmarks.hold_equivalence [--ops N] [--seed S]`.

Two private stores, one per variant; each step runs on both and their replies and every key's
contents must match: positions, hold records, expiry indexes, the streams' entries (fields
only: entry ids come from each store's clock, and so do the `ho` scores made from them, so
those compare members only). Steps: random position values (held, committed, safety stock,
negative availability), and holds of 1..4 lines over 3 skus, pinned or not, with and without
split, over random candidates and 0..3 channels with random thresholds and locations, some
counting until the past (lapsed at once), some reusing a hold id.
"""

from __future__ import annotations

import argparse
import random
import sys
from typing import Any

import orjson

from app import keys
from benchmarks import harness as h
from benchmarks.lua_micro import variant_sources

LOCS = ["dc-1", "store-1", "store-2", "store-3", "store-4"]
SKUS = ["SKU-A", "SKU-B", "SKU-C"]
P = 7


# Instants the script takes from its store's TIME (lua/includes/clock.lua): two stores never
# agree on them to the ms, so they are left out of the comparison.
CLOCK_FIELDS = {b"created_at", b"updated_at", b"expires_at", b"count_until", b"at"}


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
                {f: v for f, v in fields.items() if f not in CLOCK_FIELDS}
                for _, fields in r.xrange(k)
            ]
        elif t == b"string":
            out[k] = r.get(k)
        else:
            out[k] = t
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rnd = random.Random(args.seed)
    sources = {v: variant_sources(v)["hold_reserve"] for v in ("head", "work")}
    with h.store(fsync="no") as s1, h.store(fsync="no") as s2:
        stores = {"head": h.client(s1), "work": h.client(s2)}
        shas = {v: stores[v].script_load(sources[v]) for v in stores}
        now = 0  # the clock offset: each store's TIME moves on by itself
        ids: list[str] = []
        kinds: dict[str, int] = {}
        for step in range(args.ops):
            now += rnd.choice([0, 1000, 60_000])  # TTLs below stay 500 ms off these steps
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
            channels = {
                f"ch{c}": [rnd.randint(0, 10), rnd.sample(LOCS, rnd.randint(1, len(LOCS)))]
                for c in range(rnd.randint(0, 3))
            }
            hold_id = rnd.choice(ids) if ids and rnd.random() < 0.05 else f"h{step}"
            ids.append(hold_id)
            ttl = rnd.choice([-5_000, 0, 2_500, 900_000])
            ks = [keys.hold(P, hold_id), keys.expiry_index(P), keys.events(P)]
            for sku in skus:
                ks += keys.sku_keys(P, sku)
            argv = [
                now,
                hold_id,
                rnd.choice(["active", "pending"]),
                ttl,
                30_000,
                rnd.choice(["web", ""]),
                rnd.choice(["", "ref-1"]),
                str(P),
                rnd.choice(["0", "1"]),
                86_400_000,
                orjson.dumps(lines),
                orjson.dumps(skus),
                orjson.dumps(candidates),
                "",
                orjson.dumps(channels),
                "web-shop",
            ]
            replies = {}
            for v, r in stores.items():
                try:
                    replies[v] = r.evalsha(shas[v], len(ks), *ks, *argv)  # type: ignore[arg-type]
                except Exception as e:  # compared, not handled
                    replies[v] = ("error", type(e).__name__)
            kinds[str(replies["head"][0])] = kinds.get(str(replies["head"][0]), 0) + 1
            if replies["head"][:2] != replies["work"][:2]:  # [2:]: instants (created, expires)
                sys.exit(f"step {step}: replies differ\n{argv}\n{replies}")
            if step % 25 == 0 or step == args.ops - 1:
                a, b = dump(stores["head"]), dump(stores["work"])
                if a != b:
                    diff = [k for k in set(a) | set(b) if a.get(k) != b.get(k)]
                    sys.exit(f"step {step}: stores differ at {diff[:5]}")
        print(f"{args.ops} steps, same replies and stores; replies by kind: {kinds}")


if __name__ == "__main__":
    main()
