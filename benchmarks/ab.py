"""A/B of two source trees of the service on one store, in one run: the evidence behind each
tuning in docs/benchmarks.md.

    python -m benchmarks.ab /tmp/before . availability --reps 4
    python -m benchmarks.ab /tmp/before . hold1 --keyed   # a fresh Idempotency-Key a request
    python -m benchmarks.ab /tmp/before . batch100 --connections 8 --no-reaper --supply-every 10

Both trees are served at once (one worker each, `app` imported from the tree given), on the
same store and catalogue; runs alternate A, B, A, B ... so the machine's noise hits both alike.
Each run is /healthz then the scenario on the same server: the ratio and the store time per
request (every command's usec in INFO commandstats) are per run, never across runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from app.store.embedded import free_port
from benchmarks import harness as h


def serve_tree(tree: Path, store_url: str, logs: Path, name: str, reaper: bool = True) -> h.Server:
    code = (
        f"import sys; sys.path.insert(0, {str(tree)!r}); import app; "
        f"assert app.__file__.startswith({str(tree)!r}), app.__file__; "
        "from app.cli import main; sys.exit(main())"
    )
    port = free_port()
    return h.Server(
        [sys.executable, "-c", code, "serve", "--port", str(port)],
        h.clean_env(
            OMNISTOCK_REDIS_URL=store_url, OMNISTOCK_REAPER_ENABLED="true" if reaper else "false"
        ),
        port,
        logs / f"ab-{name}.log",
    )


def add_supply(base_url: str, skus: int, every: int) -> None:
    """One purchase order at dc-1, due in a week, for every `every`th sku of the catalogue."""
    eta = (datetime.now(UTC) + timedelta(days=7)).isoformat().replace("+00:00", "Z")
    with httpx.Client(base_url=base_url) as client:
        for i in range(0, skus, every):
            client.put(
                f"/v1/supply/SKU-{i:07d}/dc-1/po-bench",
                json={"type": "purchase_order", "quantity": 5, "eta": eta},
            ).raise_for_status()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path, help="source tree A (has app/ and lua/)")
    parser.add_argument("b", type=Path, help="source tree B")
    parser.add_argument("scenario", help="a benchmarks.loadgen scenario")
    parser.add_argument("--reps", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--keyed", action="store_true", help="a fresh Idempotency-Key a request")
    parser.add_argument(
        "--no-reaper", action="store_true", help="no reaper (its calls are not the scenario's)"
    )
    parser.add_argument(
        "--supply-every",
        type=int,
        default=0,
        metavar="N",
        help="a supply line at dc-1 for every Nth sku of the catalogue (0: none)",
    )
    args = parser.parse_args(argv)
    trees = {"A": args.a.resolve(), "B": args.b.resolve()}
    runs: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
    with h.store() as s, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        r = h.client(s)
        h.configure(r)
        snapshot = work / "catalogue.csv"
        h.write_snapshot(snapshot, 40_000, on_hand=1_000_000_000)
        h.run_import(s.url, snapshot)
        servers = {
            k: serve_tree(tree, s.url, work, k, reaper=not args.no_reaper)
            for k, tree in trees.items()
        }
        try:
            for server in servers.values():
                server.wait_ready("/readyz")
            if args.supply_every:
                add_supply(next(iter(servers.values())).base_url, 10_000, args.supply_every)
            for server in servers.values():
                httpx.put(
                    f"{server.base_url}/v1/stock/FLASH-1/dc-1", json={"on_hand": 10**9}
                ).raise_for_status()
                h.loadgen(server.base_url, "availability", connections=8, duration=1)
            for rep in range(args.reps):
                for name, server in servers.items():
                    floor = h.loadgen(
                        server.base_url,
                        "healthz",
                        connections=args.connections,
                        duration=args.seconds,
                    )
                    r.config_resetstat()
                    res = h.loadgen(
                        server.base_url,
                        args.scenario,
                        connections=args.connections,
                        duration=args.seconds,
                        keyed=args.keyed,
                    )
                    scripts, script_usec, usec = h.store_stats(r)
                    execs = int(r.info("commandstats").get("cmdstat_exec", {}).get("calls", 0))
                    n = max(1, sum(res["statuses"].values()))
                    good = sum(v for k, v in res["statuses"].items() if k.startswith("2"))
                    run = {
                        "healthz_rps": floor["rps"],
                        "rps": good / res["elapsed"],
                        "ratio": good / res["elapsed"] / floor["rps"],
                        "store_us": usec / n,
                        # what the store time was spent on: script calls, MULTI/EXECs
                        "scripts": scripts / n,
                        "script_us": script_usec / max(1, scripts),
                        "execs": execs / n,
                        "exec_us": (usec - script_usec) / max(1, execs),
                    }
                    runs[name].append(run)
                    print(
                        f"{name} run {rep}: healthz {run['healthz_rps']:,.0f}/s, {args.scenario} "
                        f"{run['rps']:,.0f}/s, ratio {run['ratio']:.3f}, store "
                        f"{run['store_us']:.1f} µs/request ({run['scripts']:.2f} script calls of "
                        f"{run['script_us']:.1f} µs, {run['execs']:.2f} MULTI/EXECs of "
                        f"{run['exec_us']:.1f} µs a request)",
                        flush=True,
                    )
        finally:
            for server in servers.values():
                server.stop()
            r.close()
    for name, tree in trees.items():
        ratio = statistics.median(x["ratio"] for x in runs[name])
        store = statistics.median(x["store_us"] for x in runs[name])
        print(f"{name} {tree}: median ratio {ratio:.3f}, median store {store:.1f} µs/request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
