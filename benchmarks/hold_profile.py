"""Store time of hold_reserve.lua alone, variants side by side:
`python -m benchmarks.hold_profile [--variant head|work|FILE ...]`.

Starts a private embedded store as `make bench` does (`harness.store()`, fsync always,
`harness.configure()`), and calls hold_reserve.lua with the bench's 1-line hold ARGV
(benchmarks/run.py measure_scripts: channel `web` seeing the 4 locations, no pinned location)
by raw EVALSHA, pipelined `--depth` deep (or one at a time with `--depth 1`). Each variant
holds on its own sku, so every variant sees the same history. Rounds alternate the variants,
each after a `CONFIG RESETSTAT`; the figure is the median over the rounds of `usec_per_call`
of EVALSHA (or FCALL) in `INFO commandstats`.

A variant is `head` (git HEAD's lua/), `work` (lua/ as it is now), `git:REV`, `floor` (the
hold's commands without logic: benchmarks/run.py HOLD_FLOOR_LUA), or a file: a
hold_reserve.lua-like script whose `--!include` lines name files of lua/includes/ (as it is
now) — e.g. a copy of the script cut short with `do return {'ok','[]'} end` to bisect — or
a directory laid out like lua/ (a cut of an older revision, with that revision's includes).
`fn:VARIANT` is the same script as a function library (app/store/functions.py: FUNCTION
LOAD once, FCALL per call), e.g. `--variant work --variant fn:work`; `keyed:VARIANT` sends
the same hold as a keyed create with a fresh Idempotency-Key each call (the claim's record
key and ARGV, `keyed_hold_argv`), e.g. `--variant fn:work --variant keyed:fn:work`. Beside
the command time, each round reports the store process's CPU per call (less stretched by
other processes on a busy machine); `--capacity N` adds a redis-benchmark run (50 clients, N
calls) per variant and round: the store's capacity for the call.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app import keys
from app.store import calls
from app.store.calls import Call, Idem
from app.store.functions import Library
from app.store.scripts import Expanded, expand, lua_dir
from benchmarks import harness as h
from benchmarks.hold_equivalence import two_line_indexes, with_ho_keys
from benchmarks.lua_micro import _git_lua, variant_expanded
from benchmarks.run import HOLD_FLOOR_LUA


def expanded_of(variant: str) -> Expanded:
    if variant == "floor":
        lines = HOLD_FLOOR_LUA.splitlines()
        return Expanded(HOLD_FLOOR_LUA, tuple(("floor", n) for n in range(1, len(lines) + 1)))
    path = Path(variant)
    if variant in ("head", "work") or variant.startswith("git:") or path.is_dir():
        return variant_expanded(variant, ["hold_reserve"])["hold_reserve"]

    def read(name: str) -> str:  # the script from `variant`, its includes from lua/
        return path.read_text() if name == path.name else (lua_dir() / name).read_text()

    return expand(path.stem, read)


KEYED = "keyed:"


def load(r: Any, variant: str) -> tuple[str, str]:
    """(command, sha or function name) of `variant`, loaded into the store."""
    variant = variant.removeprefix(KEYED)
    if variant.startswith("fn:"):
        e = expanded_of(variant.removeprefix("fn:"))
        lib = Library.of("profile", e.text, e.origins)
        r.execute_command("FUNCTION", "LOAD", "REPLACE", lib.text)
        return "FCALL", lib.function
    return "EVALSHA", r.script_load(expanded_of(variant).text)


def hold_argv(sha: str, sku: str, hold_id: str) -> list[str]:
    return h.bench_hold(sku, hold_id, "web-shop").argv(sha)


def two_index_hold_argv(sha: str, sku: str, hold_id: str) -> list[str]:
    """hold_argv in the key layout of a version with two line indexes (before the one line
    index, 5b97c81): each sku's `ho` key after its `hx` key."""
    call = h.bench_hold(sku, hold_id, "web-shop")
    return Call(call.script, with_ho_keys(call.keys), call.args).argv(sha)


def keyed_hold_argv(sha: str, sku: str, hold_id: str) -> list[str]:
    """hold_argv as a keyed create with a fresh Idempotency-Key sends it: the claim's record
    (a digest of its own per hold id) as the last key, and a request fingerprint, the lease
    and the retention (the service's defaults) as the last ARGV (calls.Idem)."""
    new = h.bench_new_hold(sku, hold_id, "web-shop")
    digest = hashlib.sha256(f"bench\0{hold_id}".encode()).hexdigest()
    fingerprint = hashlib.sha256(f"POST /v1/holds\0{sku}".encode()).hexdigest()
    idem = Idem(keys.idempotency(keys.tag(new.partition), digest), fingerprint, 5000, 86400)
    return calls.hold_reserve(new._replace(idem=idem), allow_split=False).argv(sha)


def hold_argv_of(variant: str) -> Callable[[str, str, str], list[str]]:
    """The arguments of a bench hold for `variant` (its revision's key layout; a keyed
    create's for `keyed:VARIANT`)."""
    if variant.startswith(KEYED):
        return keyed_hold_argv
    e = expanded_of(variant.removeprefix("fn:"))
    return two_index_hold_argv if two_line_indexes({"hold_reserve": e}) else hold_argv


def floor_argv(sha: str, sku: str, hold_id: str) -> list[Any]:
    p = keys.partition_of(sku)
    ks = [
        f"{keys.tag(p)}:floor:hold:{hold_id}",
        keys.position(p, sku),
        keys.hold_line_index(p, sku),
        f"{keys.tag(p)}:floor:events",
        f"{keys.tag(p)}:floor:expiry",
    ]
    return [sha, len(ks), *ks, int(time.time() * 1000), hold_id]


def _cpu(r: Any) -> float:
    """The store process's CPU seconds so far (user + system): unlike a command's time in
    `INFO commandstats`, not stretched while other processes have the CPU."""
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _ok(reply: Any) -> bool:
    return bool(reply == 1 or reply[0] == b"ok")  # the floor answers 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", dest="variants", action="append")
    parser.add_argument("-n", type=int, default=1000, help="calls per measurement")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--depth", type=int, default=50, help="pipeline depth (1: one at a time)")
    parser.add_argument(
        "--capacity",
        type=int,
        default=0,
        metavar="REQUESTS",
        help="also run redis-benchmark (50 clients, REQUESTS calls) on each variant per round",
    )
    args = parser.parse_args()
    load_before = os.getloadavg()
    variants = args.variants or ["head", "work"]
    _git_lua("hold_reserve.lua")  # fail early outside a git checkout
    with h.store(fsync="always") as s:
        r = h.client(s)
        h.configure(r)
        shas, skus, commands = {}, {}, {}
        holds = {v: hold_argv_of(v) for v in variants if v.removeprefix("fn:") != "floor"}
        for k, v in enumerate(variants):
            commands[v], shas[v] = load(r, v)
            sku = f"SKU-PROFILE-{k}"
            skus[v] = sku
            p = keys.partition_of(sku)
            mapping: dict[Any, Any] = {
                loc: f"1000000000:0:0:{j % 2}" for j, loc in enumerate(h.LOCATIONS)
            }
            r.hset(keys.position(p, sku), mapping=mapping)
        figures: dict[str, list[float]] = {v: [] for v in variants}
        cpu: dict[str, list[float]] = {v: [] for v in variants}
        for rnd in range(args.rounds):
            for v in variants if rnd % 2 == 0 else reversed(variants):
                r.config_resetstat()
                cpu_before = _cpu(r)
                pipe = r.pipeline(transaction=False)
                for i in range(args.n):
                    make = floor_argv if v.removeprefix("fn:") == "floor" else holds[v]
                    argv = make(shas[v], skus[v], f"hp{rnd}-{i}")
                    if args.depth == 1:
                        reply = r.execute_command(commands[v], *argv)
                        assert _ok(reply), reply
                        continue
                    pipe.execute_command(commands[v], *argv)
                    if len(pipe) == args.depth:
                        assert all(_ok(x) for x in pipe.execute())
                pipe.execute()
                cpu[v].append((_cpu(r) - cpu_before) * 1e6 / args.n)
                stats = r.info("commandstats")[f"cmdstat_{commands[v].lower()}"]
                figures[v].append(float(stats["usec_per_call"]))
        capacity: dict[str, list[float]] = {v: [] for v in variants}
        for rnd in range(args.rounds if args.capacity else 0):
            for v in variants if rnd % 2 == 0 else reversed(variants):
                make = floor_argv if v.removeprefix("fn:") == "floor" else holds[v]
                argv = [commands[v], *map(str, make(shas[v], skus[v], "hb__rand_int__"))]
                capacity[v].append(h.redis_benchmark(s, argv, args.capacity) or 0.0)
        r.close()
    report("µs a call (INFO commandstats)", {v: f"µs/{commands[v]}" for v in variants}, figures)
    report("server CPU µs a call", {v: "µs" for v in variants}, cpu)
    if args.capacity:
        report("redis-benchmark, 50 clients", {v: "calls/s" for v in variants}, capacity)
    print(f"load average before and after: {load_before} -> {os.getloadavg()}")


def report(what: str, units: dict[str, str], figures: dict[str, list[float]]) -> None:
    """Each variant's median over the rounds (and every round), and with two variants the
    median of the second's round-by-round ratio to the first."""
    print(what)
    for v, runs in figures.items():
        each = " ".join(f"{x:.1f}" for x in runs)
        print(f"  {v:38s} median {statistics.median(runs):9.2f} {units[v]}  ({each})")
    if len(figures) == 2:
        (a, xs), (b, ys) = figures.items()
        ratio = statistics.median(y / x for x, y in zip(xs, ys, strict=True) if x)
        print(f"  {b} / {a}: median ratio of the rounds {ratio:.2f}")


if __name__ == "__main__":
    main()
