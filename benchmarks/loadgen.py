"""A small HTTP/1.1 load generator for the bench: keep-alive connections on uvloop, no HTTP
library in the hot path, run as its own process so it never shares an interpreter with the
service it measures.

Why not Locust here: Locust (gevent, FastHttpUser) is the right tool for the scenario mix of
`make loadtest`, but on this 2-core machine its per-request cost (a few hundred µs of Python)
would make the generator, not the service, the bottleneck of a throughput ratio. `wrk` would be
tighter still, but is not installable from PyPI, and `make bench` must run on a fresh clone.
This client costs ~30 µs a request, and both sides of every ratio use it.

Modes:
- closed loop (`rate` 0): `connections` clients, each sending its next request as soon as the
  previous answer is in, for `duration` seconds: the maximum throughput.
- open loop (`rate` > 0): requests are *scheduled* at a fixed rate and sent on a free
  connection; latency counts from the scheduled time, so a stalled server shows up in the
  percentiles instead of silently lowering the offered load (no coordinated omission).

Prints one JSON object: requests, by status, errors, elapsed seconds, rps, latency percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import orjson

RequestFactory = Callable[[int], tuple[str, str, bytes | None]]  # i -> (method, path, body)


def scenarios(skus: int, seed: int, flash_sku: str = "FLASH-1") -> dict[str, RequestFactory]:
    rnd = random.Random(seed)
    tag = f"{seed}-{time.monotonic_ns()}"

    def sku() -> str:
        return f"SKU-{rnd.randrange(skus):07d}"

    groups: list[list[str]] = []

    def groups5() -> list[list[str]]:
        if not groups:
            groups.extend(_groups_of(skus, 5))
        return groups

    def purchase(i: int) -> tuple[str, str, bytes]:
        return ("POST", "/v1/holds", orjson.dumps({"sku": flash_sku, "quantity": 1}))

    by_size: dict[int, list[list[str]]] = {}

    def groups_of(n: int) -> list[list[str]]:
        if n not in by_size:
            by_size[n] = _groups_of(skus, n)
        return by_size[n]

    def hold_body(lines: list[dict[str, Any]]) -> bytes:
        return orjson.dumps({"channel": "web", "lines": lines})

    return {
        "healthz": lambda i: ("GET", "/healthz", None),
        "availability": lambda i: ("GET", f"/v1/availability/{sku()}?channel=web", None),
        "batch100": lambda i: (
            "POST",
            "/v1/availability/query",
            orjson.dumps({"skus": [sku() for _ in range(100)], "channel": "web"}),
        ),
        "hold1": lambda i: (
            "POST",
            "/v1/holds",
            hold_body([{"sku": sku(), "quantity": 1}]),
        ),
        "hold5": lambda i: (
            "POST",
            "/v1/holds",
            hold_body([{"sku": s, "quantity": 1} for s in rnd.choice(groups5())]),
        ),
        "flash": lambda i: ("POST", "/v1/holds", hold_body([{"sku": flash_sku, "quantity": 1}])),
        # the PostgreSQL baseline and the FastAPI + Lua counter peer take the same body
        "pg_flash": purchase,
        "peer_flash": purchase,
        # Find in store (benchmarks/nearby.py): `skus` NB- skus stocked at 1,000 stores.
        "nearby": lambda i: ("GET", nearby_path(rnd, f"NB-{rnd.randrange(skus):05d}"), None),
        "availability_near": lambda i: (
            "GET",
            f"/v1/availability/NB-{rnd.randrange(skus):05d}?channel=web",
            None,
        ),
        "hold3": lambda i: (
            "POST",
            "/v1/holds",
            orjson.dumps(
                {
                    "channel": "ship",
                    "lines": [{"sku": s, "quantity": 1} for s in rnd.choice(groups_of(3))],
                }
            ),
        ),
        "kit_hold": lambda i: (
            "POST",
            "/v1/holds",
            orjson.dumps(
                {
                    "channel": "ship",
                    "lines": [
                        {"sku": f"KIT-{rnd.randrange(len(groups_of(3))):05d}", "quantity": 1}
                    ],
                }
            ),
        ),
        "event": lambda i: (
            "POST",
            "/v1/stock/events",
            orjson.dumps(
                {
                    "events": [
                        {
                            "id": f"bench-{tag}-{i}",
                            "type": "receipt",
                            "sku": sku(),
                            "location": "store-1",
                            "quantity": 1,
                        }
                    ]
                }
            ),
        ),
    }


# The square benchmarks/nearby.py spreads its 1,000 stores over (France, roughly).
NEARBY_BOX = (43.0, 50.0, -1.0, 7.0)  # lat min, lat max, lon min, lon max
NEARBY_RADIUS_KM = 50


def nearby_path(rnd: random.Random, sku: str) -> str:
    lat_lo, lat_hi, lon_lo, lon_hi = NEARBY_BOX
    lat, lon = rnd.uniform(lat_lo, lat_hi), rnd.uniform(lon_lo, lon_hi)
    return (
        f"/v1/availability/{sku}/nearby?lat={lat:.5f}&lon={lon:.5f}"
        f"&radius_km={NEARBY_RADIUS_KM}&channel=web"
    )


def _groups_of(skus: int, n: int) -> list[list[str]]:
    """Groups of `n` skus of the catalogue that share a partition: a 5-line hold that is one
    script call, which is what the issue's '5-line hold' store time means."""
    from app.keys import partition_of

    by_partition: dict[int, list[str]] = {}
    for i in range(skus):
        sku = f"SKU-{i:07d}"
        by_partition.setdefault(partition_of(sku), []).append(sku)
    groups = [group[:n] for group in by_partition.values() if len(group) >= n]
    if not groups:
        raise SystemExit(f"no partition holds {n} of {skus} skus: use a larger catalogue")
    return groups


def encode(host: str, method: str, path: str, body: bytes | None, key: str = "") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n"
    if key:
        head += f"Idempotency-Key: {key}\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + (body or b"")


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
            break
    if length:
        await reader.readexactly(length)
    return status


class Result:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()

    def summary(self, elapsed: float, offered: float) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def pct(q: float) -> float:
            return round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 3) if lat else 0.0

        done = sum(self.statuses.values())
        return {
            "requests": done,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": dict(self.errors),
            "elapsed": round(elapsed, 3),
            "rps": round(done / elapsed, 1) if elapsed else 0.0,
            "offered_rps": offered,
            "latency_ms": {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "max": pct(1.0)},
        }


async def run(
    url: str,
    factory: RequestFactory,
    connections: int,
    duration: float,
    rate: float,
    max_requests: int = 0,
    keyed: bool = False,
) -> dict[str, Any]:
    parts = urlsplit(url)
    run_tag = f"lg-{time.time_ns()}"
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    counter = itertools.count()
    result = Result()
    conns = [await asyncio.open_connection(host, port) for _ in range(connections)]
    start = time.perf_counter()
    deadline = start + duration

    def next_request() -> bytes | None:
        i = next(counter)
        if max_requests and i >= max_requests:
            return None
        method, path, body = factory(i)
        return encode(host, method, path, body, f"{run_tag}-{i}" if keyed else "")

    async def closed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while time.perf_counter() < deadline:
            request = next_request()
            if request is None:
                return
            t0 = time.perf_counter()
            try:
                status = await _exchange(reader, writer, request)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                result.errors[type(exc).__name__] += 1
                return
            result.latencies.append(time.perf_counter() - t0)
            result.statuses[status] += 1

    if rate <= 0:
        await asyncio.gather(*(closed(r, w) for r, w in conns))
    else:
        free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
        for conn in conns:
            free.put_nowait(conn)
        pending: set[asyncio.Task[None]] = set()

        async def one(scheduled: float, request: bytes) -> None:
            reader, writer = await free.get()
            try:
                status = await _exchange(reader, writer, request)
                result.latencies.append(time.perf_counter() - scheduled)
                result.statuses[status] += 1
                free.put_nowait((reader, writer))
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                result.errors[type(exc).__name__] += 1

        for i in itertools.count():
            scheduled = start + i / rate
            if scheduled >= deadline:
                break
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            request = next_request()
            if request is None:
                break
            task = asyncio.create_task(one(scheduled, request))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.wait(pending, timeout=max(5.0, duration))
    elapsed = time.perf_counter() - start
    for _, writer in conns:
        writer.close()
    return result.summary(elapsed, rate)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("scenario")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=0.0, help="requests/s; 0: closed loop")
    parser.add_argument("--max-requests", type=int, default=0)
    parser.add_argument("--skus", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sku", default="FLASH-1", help="the sku of the flash-sale scenarios")
    parser.add_argument("--keyed", action="store_true", help="a fresh Idempotency-Key a request")
    args = parser.parse_args(argv)
    factory = scenarios(args.skus, args.seed, args.sku)[args.scenario]
    job = run(
        args.url,
        factory,
        args.connections,
        args.duration,
        args.rate,
        args.max_requests,
        args.keyed,
    )
    try:
        import uvloop  # uvicorn[standard] brings it

        summary = uvloop.run(job)
    except ImportError:  # pragma: no cover
        summary = asyncio.run(job)
    sys.stdout.write(orjson.dumps(summary).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
