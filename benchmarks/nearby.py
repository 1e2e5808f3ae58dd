"""Measurement 10 of `make bench`: find in store and kits, side by side in one run.

- A nearby query (`GET /v1/availability/{sku}/nearby`, 50 km around a random point, channel
  `web` of 1,000 stores spread over a 7° x 8° square) vs the single-sku availability GET of
  the same skus and channel (which reads all 1,000 positions): store time per request (INFO
  commandstats) and the service's closed-loop throughput.
- A hold of one kit of 3 components vs a plain 3-line hold of the same 3 skus (one
  partition, channel `ship` of 4 warehouses): the kit is expanded by the service, the script
  is the same call, with a group.

Its own embedded store and `omnistock serve` (1 worker); configuration written through
config_put.lua (1,000 location PUTs over HTTP would each reload the cache), stock imported
with `omnistock import`, kits defined over HTTP.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from app import keys
from app.store import calls
from app.store.scripts import script_source
from benchmarks import harness as h
from benchmarks.loadgen import NEARBY_BOX, _groups_of

STORES = [f"st-{i:04d}" for i in range(1000)]
# The holds' locations: 4 warehouses outside `web`, so a hold's store time is the kit's (or the
# 3 lines') own, not the channel figures of a 1,000-location channel each event carries.
SHIP = [f"wh-{i}" for i in range(4)]
Row = tuple[str, str, str]


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def seed(url: str, r: Any, near_skus: int, hold_skus: int, work: Path) -> int:
    """1,000 stores with coordinates, channels `web` (all) and `ship` (4), `near_skus` NB-
    skus at every store, the `hold_skus` catalogue at the 4 ship stores; returns the kits made
    (one per group of 3 catalogue skus sharing a partition)."""
    put = r.register_script(script_source("config_put"))
    rnd = random.Random(9)
    lat_lo, lat_hi, lon_lo, lon_hi = NEARBY_BOX
    for i, loc in enumerate(STORES):
        lat, lon = rnd.uniform(lat_lo, lat_hi), rnd.uniform(lon_lo, lon_hi)
        doc = {
            "type": "store",
            "name": f"Store {i}",
            "ship": True,
            "pickup": True,
            "priority": 10,
            "geo": {"lat": lat, "lon": lon},
        }
        call = calls.config_put(keys.LOCATIONS, loc, orjson.dumps(doc), geo=f"{lon!r} {lat!r}")
        put(keys=call.keys, args=call.args)
    for i, loc in enumerate(SHIP):
        doc = {"type": "warehouse", "name": f"Warehouse {i}", "ship": True, "priority": i}
        call = calls.config_put(keys.LOCATIONS, loc, orjson.dumps(doc), geo="-")
        put(keys=call.keys, args=call.args)
    for channel, locs in (("web", STORES), ("ship", SHIP)):
        doc = {"locations": locs, "low_stock_threshold": 5}
        call = calls.config_put(keys.CHANNELS, channel, orjson.dumps(doc))
        put(keys=call.keys, args=call.args)
    snapshot = work / "nearby-catalogue.csv"
    with open(snapshot, "w") as fh:
        fh.write("sku,location,on_hand,safety_stock\n")
        for n in range(near_skus):
            for j, loc in enumerate(STORES):
                fh.write(f"NB-{n:05d},{loc},{(n + j) % 4},0\n")
        for n in range(hold_skus):
            for loc in SHIP:
                fh.write(f"SKU-{n:07d},{loc},1000000000,0\n")
    h.run_import(url, snapshot)
    return len(_groups_of(hold_skus, 3))


def define_kits(base_url: str, hold_skus: int) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as http:
        for g, group in enumerate(_groups_of(hold_skus, 3)):
            body = {"components": [{"sku": s, "quantity": 1} for s in group]}
            http.put(f"/v1/kits/KIT-{g:05d}", json=body).raise_for_status()


def _run(
    r: Any, svc: h.Server, scenario: str, skus: int, requests: int, conns: int, secs: float
) -> dict[str, Any]:
    """Store time per request (`requests` on 8 connections), then closed-loop throughput."""
    r.config_resetstat()
    res = h.loadgen(
        svc.base_url, scenario, connections=8, duration=120, max_requests=requests, skus=skus
    )
    _, _, usec = h.store_stats(r)
    done = sum(res["statuses"].values())
    status = "201" if "hold" in scenario else "200"
    loop = h.loadgen(svc.base_url, scenario, connections=conns, duration=secs, skus=skus)
    return {
        "requests": done,
        "ok": h.ok(res, status),
        "usec_per_request": usec / max(done, 1),
        "rps": h.ok(loop, status) / loop["elapsed"],
        "p50_ms": loop["latency_ms"]["p50"],
    }


def measure(
    near_skus: int, hold_skus: int, requests: int, connections: int, duration: float, work: Path
) -> dict[str, Any]:
    out: dict[str, Any] = {"stores": len(STORES)}
    with h.store(fsync="always") as s:
        r = h.client(s)
        log("10: seeding 1,000 stores with coordinates")
        out["kits"] = seed(s.url, r, near_skus, hold_skus, work)
        with h.omnistock(s.url, work) as svc:
            define_kits(svc.base_url, hold_skus)
            h.loadgen(svc.base_url, "nearby", connections=8, duration=0.5, skus=near_skus)
            for scenario, skus in (
                ("nearby", near_skus),
                ("availability_near", near_skus),
                ("hold3", hold_skus),
                ("kit_hold", hold_skus),
            ):
                log(f"10: {scenario}")
                out[scenario] = _run(r, svc, scenario, skus, requests, connections, duration)
        r.close()
    return out


def _vs(a: dict[str, Any], b: dict[str, Any]) -> str:
    return (
        f"{a['usec_per_request']:.1f} vs {b['usec_per_request']:.1f} µs store time/request; "
        f"{a['rps']:,.0f} vs {b['rps']:,.0f} req/s, p50 {a['p50_ms']:.1f} vs {b['p50_ms']:.1f} ms"
    )


def rows(res: dict[str, Any]) -> list[Row]:
    a, b = res["nearby"], res["availability_near"]
    k, p = res["kit_hold"], res["hold3"]
    return [
        (
            f"10. nearby query (50 km, channel of {res['stores']:,} stores) vs single-sku "
            "availability GET (same channel)",
            _vs(a, b),
            f"{a['rps'] / max(b['rps'], 1e-9):.2f}x throughput",
        ),
        (
            "10. hold of one 3-component kit vs a plain 3-line hold (same skus, one partition)",
            _vs(k, p) + f"; {k['ok']}/{k['requests']} vs {p['ok']}/{p['requests']} granted",
            f"{k['rps'] / max(p['rps'], 1e-9):.2f}x throughput",
        ),
    ]
