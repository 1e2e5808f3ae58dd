"""What the read timeouts cost: uvicorn's HTTP/1.1 protocol with and without
app.server.timeouts.ReadTimeoutProtocol, on one event loop, in one run.

    python -m benchmarks.read_timeouts --requests 5000 --reps 20

Each rep serves `requests` keep-alive GETs over a socketpair to a minimal ASGI app (no app
work at all: the protocol's own cost is as large a share as it can be), alternating the two
classes so the machine's noise hits both alike. Server and client share the process; the rate
is per CPU second of it (not wall time, which other processes on a shared machine sway).
Prints the median requests per CPU second of each class and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from app.server.timeouts import ReadTimeoutProtocol

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n"


class UvicornAgain(HttpToolsProtocol):
    """uvicorn's class unchanged, under another name."""


async def ok_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def serve_requests(protocol_class: type[HttpToolsProtocol], requests: int) -> float:
    loop = asyncio.get_running_loop()
    config = Config(app=ok_app, http=protocol_class, log_config=None, lifespan="off")
    config.load()
    state = ServerState()
    server_sock, client_sock = socket.socketpair()
    await loop.connect_accepted_socket(
        lambda: protocol_class(config=config, server_state=state, app_state={}), server_sock
    )
    reader, writer = await asyncio.open_connection(sock=client_sock)
    started = time.process_time()  # CPU time: less swayed by other processes than wall time
    for _ in range(requests):
        writer.write(REQUEST)
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(2)
    elapsed = time.process_time() - started
    writer.close()
    return requests / elapsed


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed, as uvicorn's `loop="auto"` picks it."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args(argv)
    # The same class twice: how far apart two runs of identical code land is the noise floor.
    classes = {
        "uvicorn": HttpToolsProtocol,
        "uvicorn again": UvicornAgain,
        "with read timeouts": ReadTimeoutProtocol,
    }
    rates: dict[str, list[float]] = {name: [] for name in classes}
    for rep in range(args.reps):
        for name, cls in classes.items():
            with asyncio.Runner(loop_factory=loop_factory()) as runner:
                rate = runner.run(serve_requests(cls, args.requests))
            rates[name].append(rate)
            print(f"rep {rep} {name}: {rate:,.0f} requests per CPU second", flush=True)
    base, again, new = (statistics.median(rates[name]) for name in classes)
    print(
        f"median requests per CPU second: uvicorn {base:,.0f}, uvicorn again {again:,.0f} "
        f"(noise floor: ratio {again / base:.3f}), with read timeouts {new:,.0f}: "
        f"ratio {new / base:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
