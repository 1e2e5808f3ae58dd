"""`make loadtest`: the Locust scenarios against a private Omnistock, then the invariants.

Starts an embedded store and `omnistock serve` on free loopback ports, seeds a catalogue with
`omnistock import`, runs Locust headless for a bounded time — the traffic mix, then the flash
sale — and writes CSV + HTML reports into loadtests/results/<timestamp>/. Ends with the
invariant check (exit 1 if any fails):

- the flash sale never granted more units than the sku had, and the units the clients were
  granted are exactly the units the store holds for it;
- `omnistock audit`: every counter equals the sum over the hold records, indexes and event log
  agree.

    python -m loadtests.run [--users 50] [--mix-seconds 30] [--flash-seconds 15] [--workers 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from benchmarks import harness as h

ROOT = Path(__file__).resolve().parent.parent
FLASH_SKU = "FLASH-1"


def log(msg: str) -> None:
    print(f"[loadtest {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def locust(
    base_url: str,
    classes: list[str],
    out: Path,
    name: str,
    users: int,
    seconds: int,
    env: dict[str, str],
) -> int:
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(ROOT / "loadtests" / "locustfile.py"),
        "--headless",
        "--host",
        base_url,
        "--users",
        str(users),
        "--spawn-rate",
        str(max(1, users // 2)),
        "--run-time",
        f"{seconds}s",
        "--stop-timeout",
        "5",
        "--csv",
        str(out / name),
        "--html",
        str(out / f"{name}.html"),
        "--only-summary",
        "--loglevel",
        "WARNING",
        *classes,
    ]
    log(f"locust {name}: {', '.join(classes)}, {users} users, {seconds} s")
    with open(out / f"{name}.log", "wb") as fh:
        proc = subprocess.run(
            argv, stdout=fh, stderr=subprocess.STDOUT, timeout=seconds + 120, env=env, check=False
        )
    return proc.returncode


def audit(store_url: str, out: Path) -> tuple[bool, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "app", "audit"],
        env=h.clean_env(OMNISTOCK_REDIS_URL=store_url),
        capture_output=True,
        timeout=300,
        check=False,
    )
    text = (proc.stdout + proc.stderr).decode()
    (out / "audit.txt").write_text(text)
    return proc.returncode == 0, text.strip().splitlines()[-1] if text.strip() else ""


def check_flash(base_url: str, stock: int, granted_file: Path) -> dict[str, Any]:
    granted = orjson.loads(granted_file.read_bytes()) if granted_file.exists() else {"units": 0}
    positions = httpx.get(f"{base_url}/v1/stock/{FLASH_SKU}", timeout=10).json()["positions"]
    held = sum(p["held"] + p["committed"] for p in positions)
    return {
        "stock": stock,
        "granted_to_clients": granted["units"],
        "held_in_store": held,
        "ok": granted["units"] <= stock and held == granted["units"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Omnistock load test (Locust, headless)")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--mix-seconds", type=int, default=30)
    parser.add_argument("--flash-seconds", type=int, default=15)
    parser.add_argument("--flash-stock", type=int, default=500)
    parser.add_argument("--skus", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--results", default=str(ROOT / "loadtests" / "results"))
    args = parser.parse_args(argv)

    out = Path(args.results) / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"results": str(out)}
    with h.store(fsync="always") as s, tempfile.TemporaryDirectory() as tmp:
        r = h.client(s)
        h.configure(r)
        snapshot = Path(tmp) / "catalogue.csv"
        h.write_snapshot(snapshot, args.skus * len(h.LOCATIONS), on_hand=1000)
        h.run_import(s.url, snapshot)
        with h.omnistock(s.url, out, workers=args.workers) as svc:
            httpx.put(
                f"{svc.base_url}/v1/stock/{FLASH_SKU}/dc-1",
                json={"on_hand": args.flash_stock},
                timeout=10,
            ).raise_for_status()
            granted_file = out / "flash-granted.json"
            env = {
                **h.clean_env(),
                "LOADTEST_SKUS": str(args.skus),
                "LOADTEST_FLASH_SKU": FLASH_SKU,
                "LOADTEST_GRANTED_FILE": str(granted_file),
            }
            summary["mix_exit"] = locust(
                svc.base_url,
                ["StorefrontUser", "CheckoutUser", "PosUser"],
                out,
                "mix",
                args.users,
                args.mix_seconds,
                env,
            )
            summary["flash_exit"] = locust(
                svc.base_url, ["FlashSaleUser"], out, "flash", args.users, args.flash_seconds, env
            )
            log("invariants: flash sale units, then omnistock audit")
            summary["flash"] = check_flash(svc.base_url, args.flash_stock, granted_file)
        ok, last = audit(s.url, out)
        summary["audit"] = {"clean": ok, "summary": last}
        r.close()
    (out / "invariants.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    passed = summary["flash"]["ok"] and summary["audit"]["clean"]
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    print(f"load test {'passed' if passed else 'FAILED'}: reports in {out}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
