"""Memory of one `omnistock serve` process holding 1000 SSE clients, against a real process
with its embedded store in a temp dir (loopback only, bounded in time).

Reads the service's RSS (VmRSS of the uvicorn process; the store is a separate process)
when idle, with the clients connected, and after a burst of changes that every client must
receive, then again once the clients have gone.

    .venv/bin/python benchmarks/sse_memory.py [--clients 1000] [--changes 200]
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

from benchmarks.sse_common import RawSSE, Service, seed, service


async def measure(svc: Service, clients: int, changes: int, deadline: float) -> dict[str, object]:
    await seed(svc.base_url)
    async with httpx.AsyncClient(base_url=svc.base_url, timeout=10) as api:
        # Warm the code paths (one SSE client, one change) so the baseline is not the import.
        warm = RawSSE(svc.port)
        await warm.connect()
        (await api.put("/v1/stock/warm/dc", json={"on_hand": 1})).raise_for_status()
        await asyncio.sleep(0.5)
        await warm.close()
        await asyncio.sleep(0.5)
        idle = svc.rss_kib()

        streams = [RawSSE(svc.port, "" if i % 2 else "?channel=web") for i in range(clients)]
        for i in range(0, clients, 100):
            await asyncio.gather(*(s.connect() for s in streams[i : i + 100]))
        await asyncio.sleep(1)
        connected = svc.rss_kib()

        started = time.monotonic()
        for n in range(changes):
            (await api.put(f"/v1/stock/sku-{n % 10}/dc", json={"on_hand": n})).raise_for_status()
        while any(s.events < changes for s in streams):
            if time.monotonic() > deadline:
                raise TimeoutError("clients did not receive every event in time")
            await asyncio.sleep(0.05)
        delivered_s = time.monotonic() - started
        after_burst = svc.rss_kib()
        complete = sum(1 for s in streams if s.events == changes)

        for i in range(0, clients, 200):
            await asyncio.gather(*(s.close() for s in streams[i : i + 200]))
        await asyncio.sleep(2)
        released = svc.rss_kib()
    return {
        "clients": clients,
        "clients_with_every_event": complete,
        "changes": changes,
        "burst_delivered_to_all_s": round(delivered_s, 2),
        "rss_mib": {
            "idle": round(idle / 1024, 1),
            "clients_connected": round(connected / 1024, 1),
            "after_burst": round(after_burst / 1024, 1),
            "clients_gone": round(released / 1024, 1),
        },
        "kib_per_client": round((after_burst - idle) / clients, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=120, help="seconds, overall")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.timeout
    with service() as svc:
        result = asyncio.run(measure(svc, args.clients, args.changes, deadline))
    print(json.dumps(result, indent=2))
    return 0 if result["clients_with_every_event"] == args.clients else 1


if __name__ == "__main__":
    sys.exit(main())
