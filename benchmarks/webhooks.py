"""Webhook delivery: delay from an event's store time to its receipt, and deliveries per second.

    python -m benchmarks.webhooks [--changes 2000] [--rate 50] [--workers 2]

Also part of `make bench` (benchmarks/run.py; rows "9." of docs/benchmarks.md's table).

Starts an embedded store, `omnistock serve` (2 workers: one delivers), a local receiver that
verifies every signature, and one subscription. Phase 1 sends changes at a steady `rate` and
reports the delay p50/p99 (receipt time minus the event's store stamp, its id's ms); phase 2
sends `changes` at once and reports deliveries per second while the backlog drains (one
subscription delivers one event at a time, so this is one receiver's throughput).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvicorn

from app.store.embedded import free_port
from app.webhooks.verify import verify
from benchmarks import harness as h

SECRET = "whsec_bench_0123456789abcdef"


class Receiver:
    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str]] = []  # (unix time, event id)
        self.bad = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if not verify(SECRET, body, headers.get("omnistock-signature", "")):
            self.bad += 1
        self.arrivals.append((time.time(), orjson.loads(body)["id"]))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def wait_for(receiver: Receiver, n: int, seconds: float) -> None:
    for _ in range(int(seconds / 0.01)):
        if len(receiver.arrivals) >= n:
            return
        await asyncio.sleep(0.01)


async def measure(base_url: str, changes: int, rate: float) -> dict[str, Any]:
    receiver = Receiver()
    port = free_port()
    config = uvicorn.Config(receiver, host="127.0.0.1", port=port, log_level="error")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as api:
        for _ in range(100):
            if server.started:
                break
            await asyncio.sleep(0.05)
        await api.put("/v1/locations/dc", json={"priority": 1, "ship": True})
        url = f"http://127.0.0.1:{port}/hook"
        r = await api.post("/v1/webhooks", json={"url": url, "secret": SECRET})
        assert r.status_code == 201, r.text
        await asyncio.sleep(2)  # the lease is taken within a third of a lease

        steady = min(changes, int(rate * 5))
        for i in range(steady):
            await api.put(f"/v1/stock/B-{i % 50}/dc", json={"on_hand": i})
            await asyncio.sleep(1 / rate)
        await wait_for(receiver, steady, 30)
        delays = [(t - int(eid.split("-")[0]) / 1000) * 1000 for t, eid in receiver.arrivals]

        receiver.arrivals.clear()
        sem = asyncio.Semaphore(32)

        async def change(i: int) -> None:
            async with sem:
                await api.put(f"/v1/stock/B-{i % 50}/dc", json={"on_hand": i})

        await asyncio.gather(*(change(i) for i in range(changes)))
        await wait_for(receiver, changes, 120)
        times = [t for t, _ in receiver.arrivals]
    server.should_exit = True
    await serving
    return {
        "steady_rate_per_s": rate,
        "steady_events": steady,
        "delay_ms_p50": round(statistics.median(delays), 1),
        "delay_ms_p99": round(percentile(delays, 0.99), 1),
        "burst_events": len(times),
        "deliveries_per_s": round((len(times) - 1) / (times[-1] - times[0]), 1),
        "bad_signatures": receiver.bad,
    }


def run(changes: int, rate: float, workers: int = 2) -> dict[str, Any]:
    """Both phases against a fresh store and service (`make bench` calls this too)."""
    with (
        h.store() as s,
        tempfile.TemporaryDirectory() as logs,
        h.omnistock(s.url, Path(logs), workers=workers) as service,
    ):
        result = asyncio.run(measure(service.base_url, changes, rate))
    return {**result, "workers": workers}


def rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The report's rows (measurement, figures, result) for docs/benchmarks.md."""
    return [
        (
            "9. webhook delivery delay, event's store time to receipt",
            f"{result['steady_events']} events at {result['steady_rate_per_s']:.0f}/s, "
            f"{result['workers']} workers (one delivers), signatures checked "
            f"({result['bad_signatures']} bad)",
            f"p50 {result['delay_ms_p50']:.1f} ms, p99 {result['delay_ms_p99']:.1f} ms",
        ),
        (
            "9. webhook deliveries per second, one subscription draining a backlog",
            f"{result['burst_events']} events sent at once, one receiver",
            f"{result['deliveries_per_s']:.0f} deliveries/s",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    result = run(args.changes, args.rate, args.workers)
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
