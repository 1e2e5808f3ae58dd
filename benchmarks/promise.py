"""Store time of promising (issue #13), for `make bench`: µs per request in the store of

- an on-hand 1-line hold (`hold_reserve.lua`, the bench's usual hold),
- a 1-line backorder hold that promises future supply (`hold_backorder.lua`: no units on
  hand, 20 supply lines, up to `OPEN_PROMISES` open promises on the sku),
- a timeline query of that sku (`availability.lua` + `supply_read.lua`, the two script calls
  `GET /v1/availability/{sku}/timeline` makes),

each called one at a time on the bench's store, and the ratios to the on-hand hold.
"""

from __future__ import annotations

import time
from typing import Any

from app import keys
from app.store import calls
from app.store.calls import Call
from app.store.scripts import script_source
from benchmarks import harness as h

SUPPLY_LINES = 20
OPEN_PROMISES = 100  # the promise hash is reset after this many holds: a steady state
SKU_ON_HAND = "SKU-PROMISE-ON"
SKU_BACKORDER = "SKU-PROMISE-BO"
DAY_MS = 86_400_000


def _evalsha(r: Any, sha: str, call: Call) -> None:
    r.execute_command("EVALSHA", *call.argv(sha))


def _usec(r: Any, run: Any, n: int) -> float:
    """µs of every EVALSHA per request over n requests of `run(i)`."""
    r.config_resetstat()
    for i in range(n):
        run(i)
    stats = r.info("commandstats").get("cmdstat_evalsha", {"usec": 0})
    return float(stats["usec"]) / max(n, 1)


def seed(r: Any) -> None:
    """An on-hand sku (every location 1e9 units) and a sku with nothing on hand and 20 supply
    lines spread over the 4 locations, etas 1..20 days ahead."""
    for sku, on_hand in ((SKU_ON_HAND, 1_000_000_000), (SKU_BACKORDER, 0)):
        p = keys.partition_of(sku)
        r.hset(keys.position(p, sku), mapping={loc: f"{on_hand}:0:0:0" for loc in h.LOCATIONS})
        r.sadd(keys.skus(p), sku)
    sha = r.script_load(script_source("supply_put"))
    now = int(time.time() * 1000)
    for i in range(SUPPLY_LINES):
        call = calls.supply_put(
            sku=SKU_BACKORDER,
            location=h.LOCATIONS[i % len(h.LOCATIONS)],
            supply_id=f"po-{i}",
            type="purchase_order",
            quantity=1_000_000_000,
            eta_ms=now + (i + 1) * DAY_MS,
            reference="",
            retention_ms=86_400_000,
            horizon_ms=365 * DAY_MS,
        )
        _evalsha(r, sha, call)


def measure(r: Any, n: int) -> dict[str, Any]:
    """The three store times and their ratios to the on-hand hold."""
    seed(r)
    hold_sha = r.script_load(script_source("hold_reserve"))
    backorder_sha = r.script_load(script_source("hold_backorder"))
    avail_sha = r.script_load(script_source("availability"))
    read_sha = r.script_load(script_source("supply_read"))
    p = keys.partition_of(SKU_BACKORDER)
    tag = int(time.time() * 1000)

    def on_hand_hold(i: int) -> None:
        _evalsha(r, hold_sha, h.bench_hold(SKU_ON_HAND, f"hp{tag}-{i}", "bench"))

    def backorder_hold(i: int) -> None:
        if i % OPEN_PROMISES == 0:
            r.delete(keys.promises(p, SKU_BACKORDER))
        hold = h.bench_new_hold(SKU_BACKORDER, f"hb{tag}-{i}", "bench")
        call = calls.hold_backorder(hold, needed_by_ms=0)
        _evalsha(r, backorder_sha, call)

    def timeline(_: int) -> None:
        _evalsha(r, avail_sha, calls.availability(p, [SKU_BACKORDER], h.LOCATIONS))
        _evalsha(r, read_sha, calls.supply_read(p, [SKU_BACKORDER]))

    on_hand = _usec(r, on_hand_hold, n)
    backorder = _usec(r, backorder_hold, n)
    # The timeline with the last round's open promises in place.
    read = _usec(r, timeline, n)
    return {
        "supply_lines": SUPPLY_LINES,
        "open_promises": OPEN_PROMISES,
        "on_hand_hold_usec": on_hand,
        "backorder_hold_usec": backorder,
        "timeline_usec": read,
        "backorder_ratio": backorder / max(on_hand, 1e-9),
        "timeline_ratio": read / max(on_hand, 1e-9),
    }
