"""`make bench`: the six measurements of docs/benchmarks.md, each a ratio of figures measured in
one run on this machine, plus plots and py-spy profiles of the missed targets.

    python -m benchmarks.run                 # full scale, writes docs/benchmarks.md + docs/bench/
    python -m benchmarks.run --smoke --out D # tiny scale (the test suite), writes into D

Everything is started here and talks only to 127.0.0.1: an embedded store (valkey-server, as
`omnistock serve` runs it), `omnistock serve`, the PostgreSQL baseline (only when
OMNISTOCK_BENCH_PG_DSN answers), the load generator (benchmarks/loadgen.py, own process).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis

from app import keys
from app.store import calls
from benchmarks import harness as h
from benchmarks import nearby, promise, report, sharding, webhooks


@dataclass
class Scale:
    import_positions: int
    skus: int  # catalogue of the HTTP measurements
    duration: float  # seconds per closed-loop run
    connections: int
    flash_connections: tuple[int, ...]
    flash_workers: tuple[int, ...]  # uvicorn workers of each side, the same on both
    oversell_stock: int
    script_requests: int
    benchmark_requests: int
    load_points: tuple[float, ...]  # offered load, as fractions of the measured maximum
    load_duration: float
    workers: tuple[int, ...]
    profile: bool
    webhook_changes: int = 2000  # benchmarks/webhooks.py: the backlog drained at once
    webhook_rate: float = 50.0  # and the steady rate its delay is measured at
    near_skus: int = 200  # skus stocked at every one of the nearby bench's 1,000 stores


FULL = Scale(
    import_positions=1_000_000,
    skus=10_000,
    duration=4.0,
    connections=64,
    flash_connections=(64, 256),
    flash_workers=(1, 2),
    oversell_stock=300,
    script_requests=2000,
    benchmark_requests=50_000,
    load_points=(0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.2),
    load_duration=3.0,
    workers=(1, 2, 4),
    profile=True,
)
SMOKE = Scale(
    import_positions=2_000,
    skus=2_000,
    duration=0.5,
    connections=4,
    flash_connections=(4, 8),
    flash_workers=(1, 2),
    oversell_stock=10,
    script_requests=10,
    benchmark_requests=200,
    load_points=(0.5, 1.0),
    load_duration=0.5,
    workers=(1,),
    profile=False,
    webhook_changes=20,
    webhook_rate=20.0,
    near_skus=5,
)

TARGETS = {
    "availability_vs_healthz": 0.75,
    "flash_vs_pg": 5.0,
    "flash_vs_peer": 1.5,
    "keyed_vs_unkeyed": 0.85,
    "hold1_usec": 25.0,
    "batch100_usec": 300.0,
    "bytes_per_position": 150.0,
    "import_rate": 50_000.0,
}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- 4 and 5: import and memory ----------------------------------------------------------------


def measure_import(scale: Scale, work: Path) -> dict[str, Any]:
    log(f"import: {scale.import_positions:,} positions into a fresh store (fsync always)")
    snapshot = work / "snapshot.csv"
    n = h.write_snapshot(snapshot, scale.import_positions)
    with h.store(fsync="always") as s:
        r = h.client(s)
        h.configure(r)
        before = int(r.info("memory")["used_memory"])
        summary = h.run_import(s.url, snapshot)
        after = int(r.info("memory")["used_memory"])
        streams = sum(int(r.memory_usage(keys.events(p), samples=0) or 0) for p in range(256))
        again = h.run_import(s.url, snapshot)
        # The alternative design, measured on the same data: one compact event per script call
        # (per partition per batch) naming its positions, consumers told to refetch.
        alt_key = "bench:alternative-events"
        per_call = max(1, n // 256 // max(1, n // 20_000))
        pipe = r.pipeline(transaction=False)
        names = [f"SKU-{i // 4:07d}|{h.LOCATIONS[i % 4]}" for i in range(n)]
        for i in range(0, n, per_call):
            pipe.xadd(
                alt_key,
                {
                    "type": "stock.imported",
                    "at": "1800000000000",
                    "positions": orjson.dumps(names[i : i + per_call]),
                },
            )
        pipe.execute()
        alternative = int(r.memory_usage(alt_key, samples=0) or 0)
        r.delete(alt_key)
        r.close()
    grown = after - before
    return {
        "positions": n,
        "rows_per_second": summary["rows_per_second"],
        "seconds": summary["seconds"],
        "rerun_changed": again["changed"],
        "rerun_rows_per_second": again["rows_per_second"],
        "bytes_per_position": grown / n,
        "bytes_per_position_without_streams": (grown - streams) / n,
        "stream_bytes_per_position": streams / n,
        "alternative_stream_bytes_per_position": alternative / n,
        "alternative_positions_per_event": per_call,
    }


# -- the service measurements ------------------------------------------------------------------


def seed(s: Any, r: Any, scale: Scale, work: Path) -> None:
    h.configure(r)
    snapshot = work / "catalogue.csv"
    h.write_snapshot(snapshot, scale.skus * len(h.LOCATIONS), on_hand=1_000_000_000)
    h.run_import(s.url, snapshot)


def set_stock(base_url: str, sku: str, location: str, on_hand: int) -> dict[str, Any]:
    r = httpx.put(f"{base_url}/v1/stock/{sku}/{location}", json={"on_hand": on_hand}, timeout=10)
    r.raise_for_status()
    doc: dict[str, Any] = r.json()
    return doc


def measure_floor(svc: h.Server, scale: Scale) -> dict[str, Any]:
    log("1: availability GET vs /healthz, interleaved")
    totals = {"healthz": [0, 0.0], "availability": [0, 0.0]}
    latency = {}
    for scenario in ("healthz", "availability", "healthz", "availability"):
        res = h.loadgen(
            svc.base_url,
            scenario,
            connections=scale.connections,
            duration=scale.duration / 2,
            skus=scale.skus,
        )
        totals[scenario][0] += h.ok(res)
        totals[scenario][1] += res["elapsed"]
        latency[scenario] = res["latency_ms"]
    rps = {k: v[0] / v[1] for k, v in totals.items()}
    return {
        "healthz_rps": rps["healthz"],
        "availability_rps": rps["availability"],
        "ratio": rps["availability"] / rps["healthz"],
        "latency_ms": latency,
    }


def oversell_load(url: str, scenario: str, scale: Scale, conns: int, sku: str) -> dict[str, Any]:
    """Three requests for every unit of `sku`'s little stock, one unit each."""
    return h.loadgen(
        url,
        scenario,
        connections=conns,
        duration=60,
        max_requests=scale.oversell_stock * 3,
        sku=sku,
    )


def oversell_omnistock(svc: h.Server, scale: Scale, conns: int, workers: int = 1) -> dict[str, Any]:
    """A fresh sku with a little stock, far more requests than units: the 201s the clients
    count must not exceed the stock and must equal the units the store holds."""
    sku = f"FLASH-OS-{conns}-{workers}"  # a fresh sku for every run
    set_stock(svc.base_url, sku, "dc-1", scale.oversell_stock)
    check = oversell_load(svc.base_url, "flash", scale, conns, sku)
    position = httpx.get(f"{svc.base_url}/v1/stock/{sku}", timeout=10).json()["positions"][0]
    granted = h.ok(check, "201")
    return {
        "stock": scale.oversell_stock,
        "requests": check["requests"],
        "granted": granted,
        "held": position["held"],
        "ok": granted <= scale.oversell_stock and position["held"] == granted,
    }


def oversell_pg(
    dsn: str, pg: h.Server, scale: Scale, conns: int, workers: int = 1
) -> dict[str, Any]:
    sku = f"FLASH-OS-{conns}-{workers}"  # a fresh sku for every run
    h.pg_execute(
        dsn, f"INSERT INTO bench_stock (sku, on_hand) VALUES ('{sku}', {scale.oversell_stock})"
    )
    check = oversell_load(pg.base_url, "pg_flash", scale, conns, sku)
    (rows,) = h.pg_execute(
        dsn,
        "SELECT s.on_hand, s.reserved, (SELECT count(*) FROM bench_reservation r "
        f"WHERE r.sku = s.sku) AS n FROM bench_stock s WHERE s.sku = '{sku}'",
    )
    granted = h.ok(check, "201")
    row = rows[0]
    return {
        "stock": scale.oversell_stock,
        "requests": check["requests"],
        "granted": granted,
        "held": int(row["reserved"]),
        "ok": granted <= row["on_hand"] and row["reserved"] == granted == row["n"],
    }


def oversell_peer(peer: h.Server, r: Any, scale: Scale, conns: int) -> dict[str, Any]:
    """The peer's oversell check, as Omnistock's: its counter must fall by the 201s counted."""
    sku = f"FLASH-OS-{conns}"
    r.set(f"stock:{sku}", scale.oversell_stock)
    check = oversell_load(peer.base_url, "peer_flash", scale, conns, sku)
    granted = h.ok(check, "201")
    held = scale.oversell_stock - int(r.get(f"stock:{sku}"))
    return {
        "stock": scale.oversell_stock,
        "requests": check["requests"],
        "granted": granted,
        "held": held,
        "ok": granted <= scale.oversell_stock and held == granted,
    }


def measure_flash(svc: h.Server, store_url: str, scale: Scale, logs: Path) -> dict[str, Any]:
    """Holds/s on one sku with stock that never runs out, Omnistock, the FastAPI + Lua counter
    peer (one worker, its own store with the same settings) and PostgreSQL in interleaved
    halves (the machine's noise hits them alike); then each side's oversell check. Omnistock and
    PostgreSQL run the same number of uvicorn workers: one (`svc`), then each count of
    `scale.flash_workers` above one; the peer runs with one."""
    dsn = os.environ.get("OMNISTOCK_BENCH_PG_DSN", "")
    why = "OMNISTOCK_BENCH_PG_DSN is not set" if not dsn else h.pg_reachable(dsn)
    out: dict[str, Any] = {"pg": None if why else "ok", "pg_skipped": why, "runs": {}}
    with contextlib.ExitStack() as peer_stack:
        peer_store = peer_stack.enter_context(h.store(fsync="always"))
        peer_r = peer_stack.enter_context(h.client(peer_store))
        peer = peer_stack.enter_context(h.counter_peer(peer_store.url, logs))
        omni_r = peer_stack.enter_context(redis.Redis.from_url(store_url, socket_timeout=120))
        for workers in scale.flash_workers:
            with contextlib.ExitStack() as stack:
                omni = (
                    svc
                    if workers == 1
                    else stack.enter_context(h.omnistock(store_url, logs, workers=workers))
                )
                pg = None if why else stack.enter_context(h.pg_baseline(dsn, logs, workers))
                sides: dict[str, Side] = {"omnistock": Side(omni, "flash", omni_r)}
                if workers == 1:
                    sides["peer"] = Side(peer, "peer_flash", peer_r)
                if pg is not None:
                    sides["pg"] = Side(pg, "pg_flash", None)
                for conns in scale.flash_connections:
                    run = flash_run(sides, dsn, scale, conns, workers)
                    run.update(connections=conns, workers=workers)
                    out["runs"][str(conns) if workers == 1 else f"{conns}x{workers}"] = run
    return out


@dataclass
class Side:
    """One side of the flash sale: its server, the load generator's scenario, and a client
    of its store (for the commands it ran; None for PostgreSQL)."""

    server: h.Server
    scenario: str
    store: Any


# The store commands that show what each side runs per hold: Omnistock's script (FCALL) and the
# writes inside it (record, position, indexes, event), the peer's EVAL and its GET/DECRBY.
PROOF_COMMANDS = ("fcall", "evalsha", "eval", "hset", "zadd", "xadd", "get", "decrby")


def flash_run(
    sides: dict[str, Side], dsn: str, scale: Scale, conns: int, workers: int
) -> dict[str, Any]:
    log(f"2: flash sale, {conns} connections")
    set_stock(sides["omnistock"].server.base_url, "FLASH-1", "dc-1", 1_000_000_000)
    if "peer" in sides:
        sides["peer"].store.set("stock:FLASH-1", 1_000_000_000)
    if "pg" in sides:
        h.pg_execute(
            dsn,
            "TRUNCATE bench_reservation",
            "DELETE FROM bench_stock",
            "INSERT INTO bench_stock (sku, on_hand) VALUES ('FLASH-1', 1000000000)",
        )
    run: dict[str, Any] = {
        name: {"granted": 0, "elapsed": 0.0, "statuses": Counter(), "commands": Counter()}
        for name in sides
    }
    for _ in range(2):
        for name, side in sides.items():
            if side.store is not None:
                side.store.config_resetstat()
            res = h.loadgen(
                side.server.base_url,
                side.scenario,
                connections=conns,
                duration=scale.duration / 2,
            )
            run[name]["granted"] += h.ok(res, "201")
            run[name]["elapsed"] += res["elapsed"]
            run[name]["statuses"].update(res["statuses"])
            run[name]["latency_ms"] = res["latency_ms"]  # the second, warm half
            if side.store is not None:
                stats = side.store.info("commandstats")
                for cmd in PROOF_COMMANDS:
                    got = stats.get(f"cmdstat_{cmd}", {})
                    run[name]["commands"][cmd] += int(got.get("calls", 0))
                    run[name]["commands"][f"{cmd}_usec"] += float(got.get("usec", 0))
    for side in run.values():
        side["holds_per_s"] = side["granted"] / max(side["elapsed"], 1e-9)
        side["statuses"] = dict(side["statuses"])
        commands = side.pop("commands")
        side["store_per_hold"] = {
            cmd: commands[cmd] / max(side["granted"], 1) for cmd in PROOF_COMMANDS
        }
        script = commands["fcall"] + commands["evalsha"] + commands["eval"]
        usec = commands["fcall_usec"] + commands["evalsha_usec"] + commands["eval_usec"]
        side["store_usec_per_script"] = usec / script if script else 0.0
    omni = sides["omnistock"]
    run["omnistock"]["oversell"] = oversell_omnistock(omni.server, scale, conns, workers)
    if "peer" in sides:
        run["peer"]["oversell"] = oversell_peer(
            sides["peer"].server, sides["peer"].store, scale, conns
        )
        run["peer_ratio"] = run["omnistock"]["holds_per_s"] / max(run["peer"]["holds_per_s"], 1e-9)
    if "pg" in sides:
        run["pg"]["oversell"] = oversell_pg(dsn, sides["pg"].server, scale, conns, workers)
        run["ratio"] = run["omnistock"]["holds_per_s"] / max(run["pg"]["holds_per_s"], 1e-9)
    return run


def measure_scripts(s: Any, r: Any, svc: h.Server, scale: Scale) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("hold1", "hold5", "batch100", "availability", "event"):
        log(f"3: store time of {name}")
        r.config_resetstat()
        res = h.loadgen(
            svc.base_url,
            name,
            connections=8,
            duration=120,
            max_requests=scale.script_requests,
            skus=scale.skus,
        )
        script_calls, script_usec, usec = h.store_stats(r)
        done = sum(res["statuses"].values())
        good = sum(v for k, v in res["statuses"].items() if k.startswith("2"))
        out[name] = {
            "requests": done,
            "ok": good,
            "script_calls": script_calls,
            "usec_per_request": usec / max(done, 1),
            "usec_per_call": script_usec / max(script_calls, 1),
        }
    # The Python tier's share of the store's capacity: the service's closed-loop throughput vs
    # redis-benchmark (50 clients) running the same script with the same arguments.
    log("3: service throughput vs redis-benchmark, same scripts")
    p = keys.partition_of("SKU-0000001")
    sku = "SKU-0000001"
    # As the service calls them: FCALL of each script's function library.
    hold_fn = h.load_function(r, "hold_reserve")
    avail_fn = h.load_function(r, "availability")
    hold_argv = ["FCALL", *h.bench_hold(sku, "hb__rand_int__", "bench").argv(hold_fn)]
    # the product page's call: positions and supply lines (incoming, next_available_at)
    avail_call = calls.availability(p, [sku], h.LOCATIONS, supply=True)
    avail_argv = ["FCALL", *avail_call.argv(avail_fn)]
    out["hold1_floor"] = measure_hold_floor(r, hold_argv, scale.script_requests)
    bench_hold = h.redis_benchmark(s, hold_argv, scale.benchmark_requests)
    bench_avail = h.redis_benchmark(s, avail_argv, scale.benchmark_requests)
    service_hold = h.loadgen(
        svc.base_url,
        "hold1",
        connections=scale.connections,
        duration=scale.duration,
        skus=scale.skus,
    )
    service_avail = h.loadgen(
        svc.base_url,
        "availability",
        connections=scale.connections,
        duration=scale.duration,
        skus=scale.skus,
    )
    out["keyed"] = measure_keyed(r, svc, scale)
    out["capacity"] = {
        "tool": "redis-benchmark" if bench_hold else None,
        "hold1": {
            "service_rps": h.ok(service_hold, "201") / service_hold["elapsed"],
            "store_rps": bench_hold or 1e6 / max(out["hold1"]["usec_per_call"], 1e-9),
        },
        "availability": {
            "service_rps": h.ok(service_avail) / service_avail["elapsed"],
            "store_rps": bench_avail or 1e6 / max(out["availability"]["usec_per_call"], 1e-9),
        },
    }
    return out


def measure_keyed(r: Any, svc: h.Server, scale: Scale) -> dict[str, Any]:
    """1-line holds/s with a fresh Idempotency-Key each (as every real checkout sends) vs
    without, the two interleaved in halves, with the script calls per hold from the store."""
    log("3: keyed vs unkeyed 1-line holds, interleaved")
    sides = {"unkeyed": [0, 0.0, 0, 0.0], "keyed": [0, 0.0, 0, 0.0]}
    for order in (("unkeyed", "keyed"), ("keyed", "unkeyed")):
        for name in order:
            r.config_resetstat()
            res = h.loadgen(
                svc.base_url,
                "hold1",
                connections=scale.connections,
                duration=scale.duration / 2,
                skus=scale.skus,
                keyed=name == "keyed",
            )
            calls, script_usec, _ = h.store_stats(r)
            side = sides[name]
            side[0] += h.ok(res, "201")
            side[1] += res["elapsed"]
            side[2] += calls
            side[3] += script_usec
    out: dict[str, Any] = {
        name: {
            "holds_per_s": n / max(elapsed, 1e-9),
            "script_calls_per_hold": calls / max(n, 1),
            "store_usec_per_hold": usec / max(n, 1),
        }
        for name, (n, elapsed, calls, usec) in sides.items()
    }
    out["ratio"] = out["keyed"]["holds_per_s"] / max(out["unkeyed"]["holds_per_s"], 1e-9)
    return out


# The writes and reads of a 1-line hold with no logic around them: the store's own cost of the
# commands, against which hold_reserve.lua's logic (sourcing, channel figures, JSON) is measured.
# KEYS: hold record, position hash, hx zset (the sku's one line index), event stream, expiry
# zset (one slot); ARGV: now (ms), hold id. The line's member carries its order (here now's,
# no logic: hold_reserve.lua takes its event's) and the record keeps it (`orders`).
HOLD_FLOOR_LUA = """
local h = redis.call('HGET', KEYS[1], 'status')
local v = redis.call('HMGET', KEYS[2], 'dc-1', 'store-1', 'store-2', 'store-3')
local z = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1])
redis.call('HSET', KEYS[2], 'dc-1', '1000000000:1:0:0')
redis.call('XADD', KEYS[4], 'MINID', '~', 0, '*', 'type', 'hold.reserved', 'sku', 'S',
  'location', 'dc-1', 'at', ARGV[1], 'on_hand', 1000000000, 'held', 1, 'committed', 0,
  'safety_stock', 0, 'available', 999999999, 'hold', ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[1] + 900000, ARGV[1] .. '000|' .. ARGV[2] .. '|dc-1|1')
redis.call('HSET', KEYS[1], 'status', 'active', 'channel', 'web', 'reference', '',
  'created_at', ARGV[1], 'updated_at', ARGV[1], 'expires_at', ARGV[1], 'count_until', ARGV[1],
  'lines', '[{"location":"dc-1","quantity":1,"sku":"S"}]', 'orders', ARGV[1] .. '000',
  'parts', '1')
redis.call('ZADD', KEYS[5], ARGV[1], ARGV[2])
return 1
"""


def measure_hold_floor(r: Any, hold_argv: list[str], n: int) -> dict[str, float]:
    """µs per call (`hold_argv[0]`: FCALL, as the service calls it) of hold_reserve.lua and of
    HOLD_FLOOR_LUA (called the same way) on the bench's store, each called one at a time (as
    a lightly loaded service does) and pipelined 50 deep (as the multiplexed connection does
    under load): where a hold's store time goes."""
    log("3: a hold's store time vs the same commands without logic")
    command = hold_argv[0]
    if command == "FCALL":
        floor_sha = h.load_function(r, "hold_floor", HOLD_FLOOR_LUA)
    else:
        floor_sha = r.script_load(HOLD_FLOOR_LUA)
    p = keys.partition_of("SKU-FLOOR")
    floor_keys = [
        f"{keys.tag(p)}:floor:hold",
        keys.position(p, "SKU-FLOOR"),
        keys.hold_line_index(p, "SKU-FLOOR"),
        f"{keys.tag(p)}:floor:events",
        f"{keys.tag(p)}:floor:expiry",
    ]
    now = int(time.time() * 1000)

    def hold_args(i: int) -> list[str]:
        hold_id = f"hf{now}-{i}"
        argv = [a.replace("hb__rand_int__", hold_id) for a in hold_argv[1:]]
        return argv

    def floor_args(i: int) -> list[Any]:
        return [floor_sha, len(floor_keys), *floor_keys, now, f"ff{i}"]

    out: dict[str, float] = {}
    for name, make in (("hold", hold_args), ("floor", floor_args)):
        for mode in ("one", "pipelined"):
            r.config_resetstat()
            base = (0 if mode == "one" else n) + (0 if name == "hold" else 10 * n)
            if mode == "one":
                for i in range(base, base + n):
                    r.execute_command(command, *make(i))
            else:
                pipe = r.pipeline(transaction=False)
                for i in range(base, base + n):
                    pipe.execute_command(command, *make(i))
                    if len(pipe) == 50:
                        pipe.execute()
                pipe.execute()
            stats = r.info("commandstats")[f"cmdstat_{command.lower()}"]
            out[f"{name}_{mode}_usec"] = float(stats["usec_per_call"])
    r.delete(*floor_keys)
    return out


def measure_load_curve(svc: h.Server, scale: Scale, max_rps: float) -> list[dict[str, Any]]:
    points = []
    for fraction in scale.load_points:
        rate = max(1.0, max_rps * fraction)
        log(f"6: availability at {rate:,.0f} req/s offered ({fraction:.0%} of max)")
        res = h.loadgen(
            svc.base_url,
            "availability",
            connections=256,
            duration=scale.load_duration,
            rate=rate,
            skus=scale.skus,
        )
        points.append(
            {
                "fraction": fraction,
                "offered_rps": rate,
                "achieved_rps": h.ok(res) / res["elapsed"],
                "p50_ms": res["latency_ms"]["p50"],
                "p99_ms": res["latency_ms"]["p99"],
                "errors": sum(res["errors"].values()),
            }
        )
    return points


def measure_workers(store_url: str, scale: Scale, logs: Path) -> list[dict[str, Any]]:
    points = []
    for workers in scale.workers:
        log(f"6: availability throughput with {workers} worker(s)")
        with h.omnistock(store_url, logs, workers=workers) as svc:
            h.loadgen(svc.base_url, "availability", connections=8, duration=0.5, skus=scale.skus)
            res = h.loadgen(
                svc.base_url,
                "availability",
                connections=scale.connections,
                duration=scale.duration,
                skus=scale.skus,
            )
            health = h.loadgen(
                svc.base_url, "healthz", connections=scale.connections, duration=scale.duration
            )
        points.append(
            {
                "workers": workers,
                "availability_rps": h.ok(res) / res["elapsed"],
                "healthz_rps": h.ok(health) / health["elapsed"],
            }
        )
    return points


def measure_replica_wait(scale: Scale, work: Path) -> dict[str, Any]:
    """1-line holds on a primary with one replica, through a service that does not wait and
    one with OMNISTOCK_WAIT_REPLICAS=1 (both stores `appendfsync always`, one machine)."""
    runs: dict[str, Any] = {}
    with h.replicated_store() as (primary, _):
        with h.client(primary) as r:
            seed(primary, r, scale, work)
        for n in (0, 1):
            log(f"replica wait: 1-line holds with OMNISTOCK_WAIT_REPLICAS={n}")
            with h.omnistock(primary.url, work, OMNISTOCK_WAIT_REPLICAS=str(n)) as svc:
                h.loadgen(svc.base_url, "hold1", connections=8, duration=0.5, skus=scale.skus)
                res = h.loadgen(
                    svc.base_url,
                    "hold1",
                    connections=scale.connections,
                    duration=scale.duration,
                    skus=scale.skus,
                )
            runs[str(n)] = {
                "holds_per_s": h.ok(res, "201") / res["elapsed"],
                "p50_ms": res["latency_ms"]["p50"],
                "p99_ms": res["latency_ms"]["p99"],
                "errors": sum(res["errors"].values()),
            }
    runs["ratio"] = runs["1"]["holds_per_s"] / max(runs["0"]["holds_per_s"], 1e-9)
    return runs


def profile(svc: h.Server, scenario: str, scale: Scale, work: Path) -> dict[str, Any]:
    log(f"profile: py-spy on the service during {scenario}")
    profiler = h.Profiler(svc.proc.pid, scale.duration, work / f"profile-{scenario}.txt")
    h.loadgen(
        svc.base_url,
        scenario,
        connections=scale.connections,
        duration=scale.duration + 0.5,
        skus=scale.skus,
    )
    summary = profiler.finish()
    return {"scenario": scenario, "summary": summary, "error": profiler.error}


def run(scale: Scale, out_dir: Path, doc: Path | None) -> dict[str, Any]:
    started = time.monotonic()
    results: dict[str, Any] = {"machine": h.machine(), "scale": asdict(scale)}
    with tempfile.TemporaryDirectory(prefix="omnistock-bench-work-") as tmp:
        work = Path(tmp)
        results["import"] = measure_import(scale, work)
        results["sharding"] = sharding.measure(scale.skus, scale.connections, scale.duration, work)
        with h.store(fsync="always") as s:
            r = h.client(s)
            log("seeding the catalogue")
            seed(s, r, scale, work)
            with h.omnistock(s.url, work) as svc:
                h.loadgen(
                    svc.base_url, "availability", connections=8, duration=0.5, skus=scale.skus
                )
                results["floor"] = measure_floor(svc, scale)
                results["flash"] = measure_flash(svc, s.url, scale, work)
                results["scripts"] = measure_scripts(s, r, svc, scale)
                log("3: store time of promising (backorder hold, timeline)")
                results["promise"] = promise.measure(r, scale.script_requests)
                results["load_curve"] = measure_load_curve(
                    svc, scale, results["floor"]["availability_rps"]
                )
                results["profiles"] = []
                if scale.profile:
                    results["profiles"].append(profile(svc, "availability", scale, work))
                    results["profiles"].append(profile(svc, "flash", scale, work))
            results["workers"] = measure_workers(s.url, scale, work)
            r.close()
        results["replica_wait"] = measure_replica_wait(scale, work)
        results["nearby"] = nearby.measure(
            scale.near_skus,
            scale.skus,
            scale.script_requests,
            scale.connections,
            scale.duration,
            work,
        )
        log(f"webhooks: {scale.webhook_changes} changes, delay at {scale.webhook_rate:.0f}/s")
        results["webhooks"] = webhooks.run(scale.webhook_changes, scale.webhook_rate)
    results["machine"]["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    results["seconds"] = round(time.monotonic() - started, 1)
    results["table"] = report.table(results, TARGETS)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    report.plots(results, out_dir)
    if doc is not None:
        report.write_doc(results, TARGETS, doc, out_dir)
    log(f"done in {results['seconds']} s")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Omnistock benchmarks (make bench)")
    parser.add_argument("--smoke", action="store_true", help="tiny scale, for the test suite")
    parser.add_argument("--out", default="docs/bench", help="plots and results.json")
    parser.add_argument("--doc", default="docs/benchmarks.md", help="'' to skip the document")
    args = parser.parse_args(argv)
    results = run(
        SMOKE if args.smoke else FULL, Path(args.out), Path(args.doc) if args.doc else None
    )
    print(report.markdown_table(results["table"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
