"""Store time of the hot scripts, old and new side by side: `python -m benchmarks.lua_micro`.

Starts a private embedded store exactly as `make bench` does (`harness.store()`, fsync always,
`harness.configure()`, 10,000 skus x 4 locations imported with `omnistock import`), then drives
the app's own domain services (so every script gets the ARGV the service builds) with each
variant of the Lua scripts in turn: `head` (the scripts of git HEAD), `work` (lua/ as it is
now), or any directory laid out like lua/. Rounds alternate the variants, each after a
`CONFIG RESETSTAT`, so the shared machine's noise hits them alike; the figures are medians over
the rounds, from `INFO commandstats`:

- `evalsha`: µs per EVALSHA call (what the issue's usec_per_call means);
- `request`: µs of every command per request, as `make bench` counts it. Commands a script
  runs are counted twice there (in EVALSHA, and again under their own name), as are the
  commands of a MULTI/EXEC (in EXEC and under their own name).

The batch read (`batch100`) runs no script: its variants differ only when the Python side
(app/store/batch.py, app/domain/stock.py) does, so it is measured once per round, with the
service's current code, and the command breakdown is printed to show what it costs.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any

import redis
from redis.asyncio import Redis

from app import keys
from app.domain.clock import StoreClock
from app.domain.config import ConfigService
from app.domain.holds import HoldService
from app.domain.models import HoldIn
from app.domain.stock import StockService
from app.domain.stock_events import StockEventService
from app.settings import Settings
from app.store.scripts import Expanded, Scripts, expand, lua_dir
from benchmarks import harness as h
from benchmarks.loadgen import _groups_of

SCENARIOS = ("hold1", "hold5", "availability", "batch100", "event")


def _git_lua(name: str, rev: str = "HEAD") -> str:
    out = subprocess.run(
        ["git", "show", f"{rev}:lua/{name}"], cwd=h.ROOT, capture_output=True, check=True
    )
    return out.stdout.decode()


def variant_sources(variant: str, names: Iterable[str] | None = None) -> dict[str, str]:
    """{script name: source with includes expanded} of `head` (git HEAD's lua/), `git:REV`
    (lua/ at a git revision), `work` (lua/ as it is now) or a directory laid out like lua/;
    every script of the registry, or those `names`."""
    return {name: e.text for name, e in variant_expanded(variant, names).items()}


def variant_expanded(variant: str, names: Iterable[str] | None = None) -> dict[str, Expanded]:
    """variant_sources(), each script with the origin of its lines (for its library)."""
    if variant == "head" or variant.startswith("git:"):
        rev = "HEAD" if variant == "head" else variant.removeprefix("git:")

        def read(name: str) -> str:
            return _git_lua(name, rev)

    else:
        base = lua_dir() if variant == "work" else Path(variant)

        def read(name: str) -> str:
            return (base / name).read_text()

    wanted = list(names) if names is not None else [f.name for f in fields(Scripts)]
    return {name: expand(name, read) for name in wanted}


class Bench:
    def __init__(self, url: str, variants: list[str], skus: int, seed: int) -> None:
        self.settings = Settings(redis_url=url, reaper_enabled=False, redis_timeout_seconds=30)
        self.redis = Redis.from_url(url, decode_responses=True)
        self.clock = StoreClock()
        self.rnd = random.Random(seed)
        self.skus = skus
        self.groups = _groups_of(skus, 5)
        self.tag = f"{seed}-{time.monotonic_ns()}"
        self.n_event = 0
        self.services: dict[str, tuple[HoldService, StockService, StockEventService]] = {}
        self.configs: dict[str, ConfigService] = {}
        for variant in variants:
            sources = variant_sources(variant)
            scripts = Scripts(
                **{name: self.redis.register_script(src) for name, src in sources.items()}
            )
            config = ConfigService(self.redis, scripts, 60.0)
            stock = StockService(self.redis, scripts, config, self.settings, self.clock)
            holds = HoldService(self.redis, scripts, config, stock, self.settings, self.clock)
            events = StockEventService(
                scripts, config, stock, self.settings, self.clock, self.redis
            )
            self.services[variant] = (holds, stock, events)
            self.configs[variant] = config

    async def start(self) -> None:
        for config in self.configs.values():
            await config.refresh(force=True)

    def sku(self) -> str:
        return f"SKU-{self.rnd.randrange(self.skus):07d}"

    def call(self, variant: str, scenario: str) -> Callable[[], Awaitable[Any]]:
        holds, stock, events = self.services[variant]
        web = self.configs[variant].channels["web"]
        if scenario == "hold1":
            return lambda: holds.create(
                HoldIn.model_validate(
                    {"channel": "web", "lines": [{"sku": self.sku(), "quantity": 1}]}
                ),
                None,
                "",
            )
        if scenario == "hold5":
            return lambda: holds.create(
                HoldIn.model_validate(
                    {
                        "channel": "web",
                        "lines": [{"sku": s, "quantity": 1} for s in self.rnd.choice(self.groups)],
                    }
                ),
                None,
                "",
            )
        if scenario == "availability":
            return lambda: stock.availability([self.sku()], web, None)
        if scenario == "batch100":
            return lambda: stock.availability([self.sku() for _ in range(100)], web, None)
        if scenario == "event":

            def event() -> Awaitable[Any]:
                self.n_event += 1
                ev = {
                    "id": f"micro-{self.tag}-{self.n_event}",
                    "type": "receipt",
                    "sku": self.sku(),
                    "location": "store-1",
                    "quantity": 1,
                }
                return events.apply([ev])

            return event
        raise ValueError(scenario)


def seed(r: redis.Redis, skus: int) -> None:
    """The positions `make bench` imports (harness.write_snapshot with on_hand 1e9: sku
    SKU-nnnnnnn, safety stock 0/1 by location), written directly rather than through
    `omnistock import`, so that this benchmark does not depend on the importer's code (its
    `stock.imported` events are not written)."""
    pipe = r.pipeline(transaction=False)
    for i in range(skus):
        sku = f"SKU-{i:07d}"
        p = keys.partition_of(sku)
        pipe.hset(
            keys.position(p, sku),
            mapping={loc: f"1000000000:0:0:{j % 2}" for j, loc in enumerate(h.LOCATIONS)},
        )
        pipe.sadd(keys.skus(p), sku)
        if len(pipe) >= 2000:
            pipe.execute()
    pipe.execute()


def stats(r: redis.Redis) -> dict[str, tuple[int, float]]:
    raw = r.info("commandstats")
    return {
        k.removeprefix("cmdstat_"): (int(v["calls"]), float(v["usec"]))
        for k, v in raw.items()
        if not k.startswith(("cmdstat_config", "cmdstat_info"))
    }


async def measure(
    bench: Bench, r: redis.Redis, variant: str, scenario: str, n: int
) -> dict[str, Any]:
    fn = bench.call(variant, scenario)
    for _ in range(5):  # warm: script loaded, connection open
        await fn()
    r.config_resetstat()
    for _ in range(n):
        await fn()
    s = stats(r)
    calls, usec = s.get("evalsha", (0, 0.0))
    return {
        "evalsha": usec / calls if calls else 0.0,
        "calls": calls / n,
        "request": sum(u for _, u in s.values()) / n,
        "by_command": {k: (c / n, u / n) for k, (c, u) in s.items()},
    }


async def main_async(args: argparse.Namespace) -> None:
    with h.store(fsync="always") as s:
        r = h.client(s)
        h.configure(r)
        seed(r, args.skus)
        bench = Bench(s.url, args.variants, args.skus, args.seed)
        await bench.start()
        scenarios = args.scenarios or list(SCENARIOS)
        results: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for rnd in range(args.rounds):
            for scenario in scenarios:
                variants = args.variants if scenario != "batch100" else args.variants[-1:]
                order = variants if rnd % 2 == 0 else variants[::-1]
                for variant in order:
                    res = await measure(bench, r, variant, scenario, args.n)
                    results.setdefault((scenario, variant), []).append(res)
        await bench.redis.aclose()
        r.close()

    print(f"{args.n} calls x {args.rounds} rounds per (scenario, variant); medians (min-max)")
    print(f"{'scenario':<13}{'variant':<28}{'EVALSHA µs/call':>22}{'all cmds µs/request':>26}")
    for (scenario, variant), runs in results.items():
        ev = [x["evalsha"] for x in runs]
        rq = [x["request"] for x in runs]
        label = variant if scenario != "batch100" else "(python side as is)"
        print(
            f"{scenario:<13}{label:<28}"
            f"{statistics.median(ev):>9.1f} ({min(ev):5.1f}-{max(ev):5.1f})"
            f"{statistics.median(rq):>13.1f} ({min(rq):5.1f}-{max(rq):5.1f})"
        )
    if args.breakdown:
        for (scenario, variant), runs in results.items():
            last = runs[-1]["by_command"]
            parts = ", ".join(
                f"{k} {c:.2f}x {u:.1f}µs"
                for k, (c, u) in sorted(last.items(), key=lambda x: -x[1][1])
            )
            print(f"  {scenario}/{variant}: {parts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "variants",
        nargs="*",
        default=["head", "work"],
        help="head, work, or a directory laid out like lua/ (default: head work)",
    )
    parser.add_argument("--scenario", dest="scenarios", action="append", choices=SCENARIOS)
    parser.add_argument("-n", type=int, default=1000, help="calls per measurement")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skus", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--breakdown", action="store_true", help="per-command µs per request")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
