"""Delay from a stock change to its SSE delivery, against a real `omnistock serve` process
with its embedded store in a temp dir (loopback only, bounded in time).

One client follows GET /v1/events?sku=...; the script changes that sku's stock with
PUT /v1/stock/{sku}/dc one at a time (the next after the event arrived) and, for each change,
times:

- put→event: from sending the PUT to reading its event on the SSE socket (the whole path:
  HTTP request, Lua script, stream, the hub's TIME round, fan-out, SSE write);
- ack→event: from the PUT's response to the event (negative: the event came first).

With --listeners N, N more unfiltered SSE clients are connected and must all receive every
event (fan-out cost on the same process). The followed client is then served last of all
(filtered subscribers come after unfiltered ones), so its figures are the worst case; the
listeners' own put→event times are reported too. All clients run in this one process, on
the same machine as the service.

    .venv/bin/python benchmarks/sse_latency.py [--changes 1000] [--listeners 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.sse_common import RawSSE, percentile, seed, service

SKU = "bench-latency-1"


async def measure(port: int, changes: int, listeners: int, deadline: float) -> dict[str, object]:
    base = f"http://127.0.0.1:{port}"
    await seed(base)
    follower = RawSSE(port, f"?sku={SKU}")
    await follower.connect()
    others = [RawSSE(port) for _ in range(listeners)]
    for i in range(0, listeners, 100):
        await asyncio.gather(*(o.connect() for o in others[i : i + 100]))

    put_to_event: list[float] = []
    ack_to_event: list[float] = []
    every_client: list[float] = []  # put→event of each listener for each change
    async with httpx.AsyncClient(base_url=base, timeout=10) as api:
        for n in range(1, changes + 1):
            if time.monotonic() > deadline:
                raise TimeoutError(f"out of time after {n - 1} changes")
            before = follower.events
            sent = time.monotonic()
            r = await api.put(f"/v1/stock/{SKU}/dc", json={"on_hand": n})
            acked = time.monotonic()
            r.raise_for_status()
            while follower.events == before:
                if time.monotonic() - sent > 5:
                    raise TimeoutError(f"change {n}: no event within 5 s")
                await asyncio.sleep(0.0001)
            got = follower.last_at
            put_to_event.append((got - sent) * 1000)
            ack_to_event.append((got - acked) * 1000)
            if others:  # wait for every listener to have this change, then note when each did
                # (polled, not notified: a wake-up per event would add client CPU to the
                # very delay measured)
                for _ in range(20_000):  # 10 s at most
                    if all(o.events >= n for o in others):
                        break
                    await asyncio.sleep(0.0005)
                every_client += [(o.last_at - sent) * 1000 for o in others if o.events == n]
        short = sum(1 for o in others if o.events != changes)
    for client in [follower, *others]:
        await client.close()
    return {
        "changes": changes,
        "listeners": listeners,
        "listeners_missing_events": short,
        "put_to_event_ms": _stats(put_to_event),
        "ack_to_event_ms": _stats(ack_to_event),
        **({"every_listener_put_to_event_ms": _stats(every_client)} if others else {}),
    }


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 50), 3),
        "p90": round(percentile(values, 90), 3),
        "p99": round(percentile(values, 99), 3),
        "max": round(max(values), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--listeners", type=int, default=0, help="extra unfiltered SSE clients")
    parser.add_argument("--timeout", type=float, default=300, help="seconds, overall")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.timeout
    with service() as svc:
        result = asyncio.run(measure(svc.port, args.changes, args.listeners, deadline))
    print(json.dumps(result, indent=2))
    return 0 if result["listeners_missing_events"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
