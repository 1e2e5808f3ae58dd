"""Store instructions per 100-sku batch transaction by how it checks for supply lines:
`python -m benchmarks.batch_supply_callgrind [-n 300]`. Needs valgrind.

The transaction is StockService._read_batch's (TIME, then per sku HMGET of 4 locations and
the ZRANGE of its first 8 hold lines), with the supply check as
- `any`: one EXISTS of every sku's supply hash (what the batch tries first; when it counts
  some, the batch is read again with `each`),
- `each`: one EXISTS per sku (what it does while _SUPPLY_BACKOFF_SECONDS runs),
- `mget`: one MGET of a per-sku marker string `os:{P}:sx:<sku>` (a design not built: exact
  in one transaction, but a second record of "has supply lines" to keep; see the comment on
  _SUPPLY_BACKOFF_SECONDS).
Two catalogs of 10,000 skus: none with supply lines, and every 10th with one (and its
marker). The same `-n` random batches for every mode, twice, alternating; the store
(benchmarks/hold_callgrind.py's wrapper) runs under callgrind with instrumentation switched
on around each mode's batches only. The script calls of the skus that have supply lines are
the same for `each` and `mget` and are not sent.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
from pathlib import Path
from typing import Any

from app import keys
from app.store.embedded import EmbeddedStore
from benchmarks import harness as h
from benchmarks.hold_callgrind import _control, _total, _wrapper

LOCATIONS = ["dc", "store-a", "store-b", "store-c"]
CATALOG = 10_000
MODES = ("any", "each", "mget")


def marker(sku: str) -> str:
    return f"{keys.tag(keys.partition_of(sku))}:sx:{sku}"


def commands(skus: list[str], mode: str) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = [("TIME",)]
    for sku in skus:
        p = keys.partition_of(sku)
        out.append(("HMGET", keys.position(p, sku), *LOCATIONS))
        out.append(("ZRANGE", keys.hold_line_index(p, sku), 0, 7, "WITHSCORES"))
        if mode == "each":
            out.append(("EXISTS", keys.supply(p, sku)))
    if mode == "any":
        out.append(("EXISTS", *(keys.supply(keys.partition_of(s), s) for s in skus)))
    if mode == "mget":
        out.append(("MGET", *(marker(s) for s in skus)))
    return out


def populate(r: Any) -> None:
    pipe = r.pipeline(transaction=False)
    for prefix in ("N", "S"):  # N: no supply lines; S: every 10th sku has one
        for i in range(CATALOG):
            sku = f"{prefix}-{i}"
            p = keys.partition_of(sku)
            pipe.hset(keys.position(p, sku), mapping={loc: "10:0:0:0" for loc in LOCATIONS})
            if prefix == "S" and i % 10 == 0:
                pipe.hset(keys.supply(p, sku), "dc|po", '{"t":"purchase_order","q":5}')
                pipe.set(marker(sku), "1")
            if len(pipe) > 500:
                pipe.execute()
    pipe.execute()


def send(r: Any, batches: list[list[str]], mode: str) -> None:
    for skus in batches:
        tx = r.pipeline(transaction=True)
        for command in commands(skus, mode):
            tx.execute_command(*command)
        tx.execute()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=300, help="batches per mode")
    args = parser.parse_args()
    results: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="omnistock-callgrind-") as tmp_name:
        tmp = Path(tmp_name)
        store = EmbeddedStore(
            tmp / "data", binary=_wrapper(tmp, tmp / "callgrind.out"), supervise=False
        )
        store.start(timeout=120)
        pid = store.pid
        assert pid is not None
        try:
            r = h.client(store)
            h.configure(r)
            populate(r)
            rng = random.Random(7)
            for catalog in ("N", "S"):
                draws = [
                    [f"{catalog}-{rng.randrange(CATALOG)}" for _ in range(100)]
                    for _ in range(args.n)
                ]
                for _ in range(2):
                    for mode in MODES:
                        send(r, draws[:5], mode)  # warm
                        before = set(tmp.glob("callgrind.out*"))
                        _control(pid, "--instr=on")
                        send(r, draws, mode)
                        _control(pid, "--instr=off")
                        _control(pid, "--dump")
                        dumps = set(tmp.glob("callgrind.out*")) - before
                        dump = sorted(dumps, key=os.path.getmtime)[-1]
                        results.setdefault((catalog, mode), []).append(_total(dump) / args.n)
            r.close()
        finally:
            store.stop(timeout=120)
    for (catalog, mode), runs in results.items():
        name = "supply on every 10th sku" if catalog == "S" else "no supply lines"
        figures = " / ".join(f"{x / 1e6:.3f} M" for x in runs)
        print(f"{name:26s} {mode:5s} {figures} instructions a transaction")


if __name__ == "__main__":
    main()
