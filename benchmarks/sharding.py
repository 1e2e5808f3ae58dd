"""Measurement 8 of `make bench`: 1-line holds on a 3-primary cluster vs one server, side by
side in one run, and what N primaries would carry (the arithmetic of docs/benchmarks.md).

Both sides: `omnistock serve`, 1 worker, the same load generator and connections.
- one server: the embedded store (valkey-server, AOF `appendfsync everysec`), no replica;
- the cluster: 3 primaries with 1 replica each (benchmarks/cluster.py), AOF `appendfsync
  everysec` on every node; a second service on it with OMNISTOCK_WAIT_REPLICAS=1 when this
  checkout has that setting (else the row says "not available": no figure is made up).
Each configuration runs in two interleaved halves (the machine's noise hits all alike), with and
without an Idempotency-Key per request. Store time: INFO commandstats of every primary, reset
before each half: usec of the script calls (FCALL; EVALSHA counted too) summed across the
primaries, per successful hold.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import redis
from redis.crc import key_slot

from app import keys
from app.settings import Settings
from app.store.embedded import find_server_binary
from benchmarks import harness as h
from benchmarks.cluster import SLOTS, LocalCluster

PRIMARIES = 3
SIZES = (1, 3, 6, 12)  # primaries of the paper capacity table
FLASH_SKU = "FLASH-SHARD-1"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def wait_setting_available() -> bool:
    return "wait_replicas" in Settings.model_fields


@contextlib.contextmanager
def cluster(work: Path) -> Iterator[LocalCluster]:
    nodes = LocalCluster(find_server_binary(), work / "cluster", primaries=PRIMARIES)
    try:
        yield nodes.start()
    finally:
        nodes.stop()


def seed(url: str, r: Any, skus: int, work: Path, **env: str) -> None:
    h.configure(r)
    snapshot = work / "shard-catalogue.csv"
    h.write_snapshot(snapshot, skus * len(h.LOCATIONS), on_hand=1_000_000_000)
    h.run_import(url, snapshot, **env)


def commandstats(primaries: list[redis.Redis]) -> list[dict[str, float]]:
    out = []
    for r in primaries:
        stats = r.info("commandstats")
        calls, usec = h.script_calls(stats)  # FCALL (the service) and EVALSHA
        wait = stats.get("cmdstat_wait", {})
        out.append(
            {
                "script_calls": float(calls),
                "script_usec": usec,
                "wait_calls": float(wait.get("calls", 0)),
            }
        )
    return out


class Side:
    """One configuration: a service, the primaries behind it, and its accumulated figures."""

    def __init__(self, svc: h.Server, primaries: list[redis.Redis], scenario: str, keyed: bool):
        self.svc, self.primaries, self.scenario, self.keyed = svc, primaries, scenario, keyed
        self.granted = 0
        self.elapsed = 0.0
        self.statuses: Counter[str] = Counter()
        self.per_primary = [Counter[str]() for _ in primaries]
        self.latency: dict[str, float] = {}

    def half(self, connections: int, duration: float, skus: int) -> None:
        for r in self.primaries:
            r.config_resetstat()
        res = h.loadgen(
            self.svc.base_url,
            self.scenario,
            connections=connections,
            duration=duration,
            skus=skus,
            sku=FLASH_SKU,
            keyed=self.keyed,
        )
        self.granted += h.ok(res, "201")
        self.elapsed += res["elapsed"]
        self.statuses.update(res["statuses"])
        self.latency = res["latency_ms"]  # the second, warm half
        for acc, stats in zip(self.per_primary, commandstats(self.primaries), strict=True):
            acc.update(stats)

    def figures(self) -> dict[str, Any]:
        holds = max(self.granted, 1)
        usec = sum(p["script_usec"] for p in self.per_primary)
        calls = sum(p["script_calls"] for p in self.per_primary)
        return {
            "holds_per_s": self.granted / max(self.elapsed, 1e-9),
            "holds": self.granted,
            "statuses": dict(self.statuses),
            "p50_ms": self.latency.get("p50", 0.0),
            "p99_ms": self.latency.get("p99", 0.0),
            "store_usec_per_hold": usec / holds,
            "script_calls_per_hold": calls / holds,
            "usec_per_script_call": usec / max(calls, 1),
            "wait_per_hold": sum(p["wait_calls"] for p in self.per_primary) / holds,
            "per_primary": [
                {
                    "script_calls": int(p["script_calls"]),
                    "usec_per_script_call": p["script_usec"] / max(p["script_calls"], 1),
                }
                for p in self.per_primary
            ],
        }


def measure(skus: int, connections: int, duration: float, work: Path) -> dict[str, Any]:
    """The table of measurement 8 (see the module's docstring) and the paper capacities."""
    wait = wait_setting_available()
    out: dict[str, Any] = {
        "primaries": PRIMARIES,
        "replicas_per_primary": 1,
        "fsync": {"single": "appendfsync everysec", "cluster": "appendfsync everysec"},
        "wait_available": wait,
        "runs": {},
    }
    cluster_env: dict[str, Any] = {"OMNISTOCK_REDIS_CLUSTER": "1"}
    with contextlib.ExitStack() as stack:
        log("8: one server (AOF everysec) and a 3-primary cluster with replicas (AOF everysec)")
        single = stack.enter_context(h.store(fsync="everysec"))
        nodes = stack.enter_context(cluster(work))
        single_r = stack.enter_context(h.client(single))
        seed(single.url, single_r, skus, work)
        with redis.RedisCluster.from_url(nodes.urls[0]) as rc:
            seed(nodes.seeds, rc, skus, work, **cluster_env)
        heads = [stack.enter_context(n.client(timeout=30)) for n in nodes.primary_nodes()]
        # The reaper off on every service: its per-partition sweep (256 script calls a second
        # per service, nothing to expire here) would land in the store time of whichever side
        # runs.
        quiet: dict[str, Any] = {"OMNISTOCK_REAPER_ENABLED": "false"}
        on_cluster = {**cluster_env, **quiet}
        services = {
            "single": (stack.enter_context(h.omnistock(single.url, work, **quiet)), [single_r]),
            "cluster": (stack.enter_context(h.omnistock(nodes.seeds, work, **on_cluster)), heads),
        }
        if wait:
            services["cluster_wait"] = (
                stack.enter_context(
                    h.omnistock(nodes.seeds, work, OMNISTOCK_WAIT_REPLICAS="1", **on_cluster)
                ),
                heads,
            )
        sides: dict[str, Side] = {}
        for name, (svc, primaries) in services.items():
            h.loadgen(svc.base_url, "hold1", connections=8, duration=0.5, skus=skus)
            for keyed in (False, True):
                sides[f"{name}{'_keyed' if keyed else ''}"] = Side(svc, primaries, "hold1", keyed)
            if name != "cluster_wait":  # one sku: the flash sale's shard
                set_stock(svc.base_url, FLASH_SKU)
                sides[f"{name}_flash"] = Side(svc, primaries, "flash", False)
        for half in range(2):
            for name, side in sides.items():
                log(f"8: {name}, half {half + 1}")
                side.half(connections, duration / 2, skus)
        out["runs"] = {name: side.figures() for name, side in sides.items()}
    out["paper"] = paper(out["runs"])
    return out


def set_stock(base_url: str, sku: str) -> None:
    r = httpx.put(f"{base_url}/v1/stock/{sku}/dc-1", json={"on_hand": 1_000_000_000}, timeout=10)
    r.raise_for_status()


def partitions_per_primary(n: int) -> list[int]:
    """How many of the 256 partitions each of `n` primaries serves when the 16384 slots are
    cut into n equal ranges (as LocalCluster and `valkey-cli --cluster create` do)."""
    share = SLOTS // n
    counts = [0] * n
    for p in range(keys.PARTITIONS):
        slot = key_slot(keys.tag(p).encode())
        counts[min(slot // share, n - 1)] += 1
    return counts


def paper(runs: dict[str, Any]) -> dict[str, Any]:
    """What N primaries would carry, from the measured per-shard store time.

    A flash sale on one sku lives in one partition, hence one slot, hence one primary: it is
    bound by 1e6 / s_flash holds/s whatever N. A catalogue-wide mix spreads over the 256
    partitions (crc32(sku) mod 256 -> the partition's slot), so over N primaries: N x 1e6 /
    s_mix, as long as the service tier keeps up (workers x the measured holds/s of a worker)."""
    flash = runs["cluster_flash"]
    busiest = max(flash["per_primary"], key=lambda p: p["script_calls"])
    s_flash = busiest["usec_per_script_call"]
    s_mix = runs["cluster"]["store_usec_per_hold"]
    s_keyed = runs["cluster_keyed"]["store_usec_per_hold"]
    per_worker = runs["cluster"]["holds_per_s"]
    table = []
    for n in SIZES:
        mix = n * 1e6 / max(s_mix, 1e-9)
        busiest_partitions = max(partitions_per_primary(n))
        table.append(
            {
                "primaries": n,
                "flash_bound": 1e6 / max(s_flash, 1e-9),
                "mix_bound": mix,
                "mix_keyed_bound": n * 1e6 / max(s_keyed, 1e-9),
                "workers_for_mix": mix / max(per_worker, 1e-9),
                # equal slot ranges give the primaries unequal numbers of partitions: the
                # mix saturates the busiest one first
                "busiest_partitions": busiest_partitions,
                "mix_bound_equal_slot_ranges": 1e6 / max(s_mix, 1e-9) * 256 / busiest_partitions,
            }
        )
    return {
        "s_flash_usec": s_flash,
        "flash_share_on_busiest": busiest["script_calls"]
        / max(sum(p["script_calls"] for p in flash["per_primary"]), 1),
        "s_mix_usec": s_mix,
        "s_mix_keyed_usec": s_keyed,
        "per_worker_holds_per_s": per_worker,
        "table": table,
    }


# -- report ----------------------------------------------------------------------------------

Row = tuple[str, str, str]  # measurement, figures, result


def _vs(a: dict[str, Any], b: dict[str, Any]) -> str:
    return (
        f"{a['holds_per_s']:,.0f} vs {b['holds_per_s']:,.0f} holds/s; store "
        f"{a['store_usec_per_hold']:.1f} vs {b['store_usec_per_hold']:.1f} µs/hold "
        f"({a['script_calls_per_hold']:.1f} vs {b['script_calls_per_hold']:.1f} script "
        "calls/hold); p50 "
        f"{a['p50_ms']:.1f} vs {b['p50_ms']:.1f} ms, p99 {a['p99_ms']:.1f} vs {b['p99_ms']:.1f} ms"
    )


def _ratio(a: dict[str, Any], b: dict[str, Any]) -> str:
    return f"{a['holds_per_s'] / max(b['holds_per_s'], 1e-9):.2f}"


def rows(shard: dict[str, Any]) -> list[Row]:
    runs = shard["runs"]
    out: list[Row] = []
    for keyed, label in (("", "unkeyed"), ("_keyed", "Idempotency-Key each")):
        a, b = runs[f"cluster{keyed}"], runs[f"single{keyed}"]
        out.append(
            (
                f"8. 1-line holds, catalogue-wide, {label}: 3-primary cluster vs one server",
                _vs(a, b),
                _ratio(a, b),
            )
        )
    for keyed, label in (("", "unkeyed"), ("_keyed", "Idempotency-Key each")):
        name = f"8. 1-line holds on the cluster, {label}: OMNISTOCK_WAIT_REPLICAS=1 vs 0"
        if not shard["wait_available"]:
            out.append((name, "OMNISTOCK_WAIT_REPLICAS is not in this checkout", "not available"))
            continue
        a, b = runs[f"cluster_wait{keyed}"], runs[f"cluster{keyed}"]
        out.append((name, _vs(a, b) + f"; {a['wait_per_hold']:.2f} WAIT/hold", _ratio(a, b)))
    a, b = runs["cluster_flash"], runs["single_flash"]
    pp = shard["paper"]
    out.append(
        (
            "8. flash sale on one sku: 3-primary cluster vs one server",
            f"{_vs(a, b)}; {pp['flash_share_on_busiest']:.0%} of the cluster's script calls on "
            "one primary",
            _ratio(a, b),
        )
    )
    out.append(
        (
            "8. per-shard store time of a 1-line hold (cluster primaries)",
            f"catalogue-wide {pp['s_mix_usec']:.1f} µs/hold ({pp['s_mix_keyed_usec']:.1f} keyed),"
            f" one sku {pp['s_flash_usec']:.1f} µs/script call on its primary; one server "
            f"{runs['single']['store_usec_per_hold']:.1f} µs/hold",
            f"{pp['s_mix_usec']:.1f} µs",
        )
    )
    return out


def paper_section(shard: dict[str, Any]) -> list[str]:
    """The capacity arithmetic for N primaries, from this run's figures (see `paper`)."""
    pp = shard["paper"]
    s_f, s_m, s_k, w = (
        pp["s_flash_usec"],
        pp["s_mix_usec"],
        pp["s_mix_keyed_usec"],
        pp["per_worker_holds_per_s"],
    )
    lines = [
        "#### What N primaries would carry (on paper, from this run's store times)",
        "",
        f"Measured on the cluster's primaries: s_flash = {s_f:.1f} µs per 1-line hold of one sku "
        f"(its primary), s_mix = {s_m:.1f} µs per catalogue-wide 1-line hold ({s_k:.1f} µs "
        f"with an Idempotency-Key: the claim, the hold and its stored response in one script "
        f"call), and one "
        f"service worker on the cluster carried w = {w:,.0f} holds/s.",
        "",
        "| N primaries | flash sale, one sku: 1e6 / s_flash | catalogue-wide, even spread: "
        "N * 1e6 / s_mix | catalogue-wide, N equal slot ranges: 1e6 / s_mix * 256 / busiest "
        "primary's partitions | keyed, even spread: N * 1e6 / s_keyed | service workers for the "
        "even mix: N * 1e6 / s_mix / w |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in pp["table"]:
        n = row["primaries"]
        lines.append(
            f"| {n} | 1e6 / {s_f:.1f} = {row['flash_bound']:,.0f} holds/s "
            f"| {n} * 1e6 / {s_m:.1f} = {row['mix_bound']:,.0f} holds/s "
            f"| 1e6 / {s_m:.1f} * 256 / {row['busiest_partitions']} = "
            f"{row['mix_bound_equal_slot_ranges']:,.0f} holds/s "
            f"| {n} * 1e6 / {s_k:.1f} = {row['mix_keyed_bound']:,.0f} holds/s "
            f"| {row['mix_bound']:,.0f} / {w:,.0f} = {row['workers_for_mix']:.0f} |"
        )
    lines += [
        "",
        "Assumptions. A flash sale's sku is one partition, hence one slot, hence one primary: "
        "more primaries do not raise its bound (only a cheaper script, or holds of more than "
        "one unit, do). The catalogue-wide mix is uniform over the skus, so over the 256 "
        "partitions (crc32(sku) mod 256); the partitions reach the primaries through their "
        "slots, and N equal slot ranges do not give each primary 256 / N partitions (the "
        "column names the busiest primary's count), so an operator wanting the even-spread "
        "column assigns slots by partition (only the 256 partition slots ever hold keys). "
        "`INFO commandstats` counts command execution only, not the primary's network I/O nor "
        "feeding its replica (each write goes once to each replica), so 1e6 / s is an upper "
        "bound, reached only by a primary with a core to itself. With OMNISTOCK_WAIT_REPLICAS=1 "
        "each write on a cluster sends its script call (FCALL), a mark SET and WAIT on a "
        "connection of its slot's primary: little primary CPU, a replica round trip added to the "
        "hold's latency, "
        "so it lowers throughput per connection rather than per shard (the WAIT rows above). "
        "The service tier is Python: one worker per core at w holds/s, whatever N. "
        "The reaper was off during these runs: expiring or committing a hold costs more store "
        "time later.",
        "",
    ]
    return lines
