"""Store time of hold_reserve.lua alone, variants side by side:
`python -m benchmarks.hold_profile [--variant head|work|FILE ...]`.

Starts a private embedded store as `make bench` does (`harness.store()`, fsync always,
`harness.configure()`), and calls hold_reserve.lua with the bench's 1-line hold ARGV
(benchmarks/run.py measure_scripts: channel `web` seeing the 4 locations, no pinned location)
by raw EVALSHA, pipelined `--depth` deep (or one at a time with `--depth 1`). Each variant
holds on its own sku, so every variant sees the same history. Rounds alternate the variants,
each after a `CONFIG RESETSTAT`; the figure is the median over the rounds of `usec_per_call`
of EVALSHA in `INFO commandstats`.

A variant is `head` (git HEAD's lua/), `work` (lua/ as it is now), or a file: a
hold_reserve.lua-like script whose `--!include` lines name files of lua/includes/ (as it is
now) — e.g. a copy of the script cut short with `do return {'ok','[]'} end` to bisect.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import orjson

from app import keys
from app.store.scripts import lua_dir
from benchmarks import harness as h
from benchmarks.lua_micro import _INCLUDE, _git_lua, variant_sources


def source_of(variant: str) -> str:
    if variant in ("head", "work"):
        return variant_sources(variant)["hold_reserve"]
    text = Path(variant).read_text()
    return _INCLUDE.sub(lambda m: (lua_dir() / "includes" / m.group(1)).read_text(), text)


def hold_argv(sha: str, sku: str, hold_id: str, now: int) -> list[str]:
    p = keys.partition_of(sku)
    return [
        sha,
        "6",
        f"{keys.tag(p)}:hold:{hold_id}",
        keys.expiry_index(p),
        keys.events(p),
        *keys.sku_keys(p, sku),
        "0",  # clock offset: the script reads the store's TIME
        hold_id,
        "active",
        "900000",
        "0",
        "web",
        "-",
        str(p),
        "0",
        "86400000",
        '[{"s":1,"q":1}]',
        f'["{sku}"]',
        orjson.dumps(h.LOCATIONS).decode(),
        "",
        orjson.dumps({"web": [5, h.LOCATIONS]}).decode(),
        "web-shop",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", dest="variants", action="append")
    parser.add_argument("-n", type=int, default=1000, help="calls per measurement")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--depth", type=int, default=50, help="pipeline depth (1: one at a time)")
    args = parser.parse_args()
    variants = args.variants or ["head", "work"]
    _git_lua("hold_reserve.lua")  # fail early outside a git checkout
    with h.store(fsync="always") as s:
        r = h.client(s)
        h.configure(r)
        shas, skus = {}, {}
        for k, v in enumerate(variants):
            shas[v] = r.script_load(source_of(v))
            sku = f"SKU-PROFILE-{k}"
            skus[v] = sku
            p = keys.partition_of(sku)
            mapping: dict[Any, Any] = {
                loc: f"1000000000:0:0:{j % 2}" for j, loc in enumerate(h.LOCATIONS)
            }
            r.hset(keys.position(p, sku), mapping=mapping)
        figures: dict[str, list[float]] = {v: [] for v in variants}
        now = int(time.time() * 1000)
        for rnd in range(args.rounds):
            for v in variants if rnd % 2 == 0 else reversed(variants):
                r.config_resetstat()
                pipe = r.pipeline(transaction=False)
                for i in range(args.n):
                    argv = hold_argv(shas[v], skus[v], f"hp{rnd}-{i}", now)
                    if args.depth == 1:
                        reply = r.execute_command("EVALSHA", *argv)
                        assert reply[0] == b"ok", reply
                        continue
                    pipe.execute_command("EVALSHA", *argv)
                    if len(pipe) == args.depth:
                        assert all(x[0] == b"ok" for x in pipe.execute())
                pipe.execute()
                stats = r.info("commandstats")["cmdstat_evalsha"]
                figures[v].append(float(stats["usec_per_call"]))
        for v in variants:
            runs = " ".join(f"{x:.1f}" for x in figures[v])
            print(f"{v:40s} median {statistics.median(figures[v]):6.2f} µs/EVALSHA  ({runs})")
        r.close()


if __name__ == "__main__":
    main()
