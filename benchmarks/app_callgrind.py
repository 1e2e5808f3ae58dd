"""Python instructions per request of the service's ASGI app, in one process, under callgrind:
`python -m benchmarks.app_callgrind [--tree PATH ...] [--scenario flash ...] [-n 300]`.

The figure the shared machine does not bend (wall-clock and CPU time do, by the other
processes' load). For each source tree (default: this one; `--tree /tmp/before` for an A/B,
each tree's `app` imported from it), a child process runs under `valgrind --tool=callgrind
--instr-atstart=no` and drives the app exactly as uvicorn would call it, without the server:
`create_app_from_env()` (as the served worker builds it, `gc.freeze` included) on uvloop,
its lifespan started, JSON logs to a file, reaper, webhooks and config refresh off and the
timeouts long (no timer fires mid-run). For each scenario in turn it sends `--warm` requests,
then switches instrumentation on around `-n` requests sent one at a time and dumps that
profile on its own. Uvicorn's share (parsing, writes) is not counted; the store is another
process, so only this process's Python and C count.

Scenarios, as benchmarks/loadgen.py sends them: `flash` (POST /v1/holds, one line of
FLASH-1 on channel web), `hold1` (the same on 16 skus in turn), `keyed` (`hold1` with a fresh
Idempotency-Key each request, as `loadgen --keyed`), `availability`
(GET /v1/availability/{sku}?channel=web over 16 skus), `healthz`.

Switching instrumentation from inside the process takes a client request (callgrind.h), so a
tiny C shim is compiled and loaded by ctypes: needs valgrind (with its headers) and a C
compiler. Repeat runs agree within about 1 %.

`--served` counts instead what a served request costs, uvicorn's share included: each tree's
`omnistock serve` (one worker) runs under callgrind, and `callgrind_control` switches
instrumentation on and off around `-n` requests of benchmarks/loadgen.py at 8 connections
(`--connections`; scenarios `flash`, `availability`, `healthz`; `peer` adds
benchmarks/counter_peer's purchase, served the same way). Concurrent requests share event-loop
turns and store writes, so these vary by a few % between runs.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SKUS = [f"CG-{i:04d}" for i in range(16)]
LOCATIONS = ["dc-1", "store-1", "store-2", "store-3"]
SCENARIOS = ("flash", "hold1", "keyed", "availability", "healthz")

_SHIM = r"""
#include <valgrind/callgrind.h>
void omni_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }
void omni_stop(void) { CALLGRIND_STOP_INSTRUMENTATION; }
void omni_dump(const char *name) { CALLGRIND_DUMP_STATS_AT(name); }
"""


def _shim(tmp: Path) -> Path:
    source, lib = tmp / "shim.c", tmp / "shim.so"
    source.write_text(_SHIM)
    subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", lib, source], check=True)
    return lib


# -- the child: runs under valgrind, imports `app` from the tree on its sys.path ------------

Request = tuple[str, str, bytes | None]


def _requests(scenario: str) -> Callable[[int], Request]:
    flash = b'{"channel":"web","lines":[{"sku":"FLASH-1","quantity":1}]}'
    if scenario == "flash":
        return lambda i: ("POST", "/v1/holds", flash)
    if scenario in ("hold1", "keyed"):
        return lambda i: (
            "POST",
            "/v1/holds",
            flash.replace(b"FLASH-1", SKUS[i % len(SKUS)].encode()),
        )
    if scenario == "availability":
        return lambda i: ("GET", f"/v1/availability/{SKUS[i % len(SKUS)]}?channel=web", None)
    if scenario == "healthz":
        return lambda i: ("GET", "/healthz", None)
    raise SystemExit(f"unknown scenario {scenario!r}: one of {', '.join(SCENARIOS)}")


async def _call(
    app: Any, method: str, target: str, body: bytes | None, key: bytes | None = None
) -> int:
    """One request as uvicorn (httptools) hands it to the app, with an Idempotency-Key when
    `key` is given; returns the status."""
    path, _, query = target.partition("?")
    headers = [(b"host", b"127.0.0.1:8080"), (b"user-agent", b"bench")]
    if key is not None:
        headers.append((b"idempotency-key", key))
    if body is not None:
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8080),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": method,
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": headers,
        "state": {},
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()  # the client stays: no disconnect mid-response
        sent = True
        return {"type": "http.request", "body": body or b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _lifespan(app: Any) -> Callable[[], Any]:
    """Start the app's lifespan; returns what shuts it down."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set_result(None)
        elif message["type"] == "lifespan.startup.failed":
            started.set_exception(RuntimeError(message.get("message")))

    task = asyncio.ensure_future(app({"type": "lifespan", "state": {}}, inbox.get, send))
    await inbox.put({"type": "lifespan.startup"})
    await started

    async def stop() -> None:
        await inbox.put({"type": "lifespan.shutdown"})
        await task

    return stop


async def _child(shim: str, scenarios: list[str], n: int, warm: int) -> None:
    from app.api.main import create_app_from_env
    from app.logs import configure

    configure("json")
    print(f"app from {sys.modules['app'].__file__}", file=sys.stderr, flush=True)
    cg = ctypes.CDLL(shim)
    app = create_app_from_env()
    stop = await _lifespan(app)
    for sku in ["FLASH-1", *SKUS]:
        for loc in LOCATIONS:
            body = b'{"on_hand": 1000000000}'
            status = await _call(app, "PUT", f"/v1/stock/{sku}/{loc}", body)
            assert status == 200, (sku, loc, status)
    run = os.getpid()  # a fresh key every request, also when another tree ran on this store
    for scenario in scenarios:
        make = _requests(scenario)
        expected = 201 if scenario in ("flash", "hold1", "keyed") else 200

        def key(i: int, scenario: str = scenario) -> bytes | None:
            return b"cg-%d-%d" % (run, i) if scenario == "keyed" else None

        for i in range(warm):
            status = await _call(app, *make(i), key(i))
            assert status == expected, (scenario, status)
        cg.omni_start()
        for i in range(warm, warm + n):
            await _call(app, *make(i), key(i))
        cg.omni_stop()
        cg.omni_dump(scenario.encode())
    await stop()


# -- the parent: the store, one valgrind child per tree, the figures -------------------------


def bench_env(store_url: str, path: Path) -> dict[str, str]:
    """The measured process's environment: `path` on PYTHONPATH, background tasks off, long
    timeouts (no timer fires mid-run)."""
    from benchmarks import harness as h

    return h.clean_env(
        PYTHONPATH=str(path),
        PYTHONHASHSEED="0",
        OMNISTOCK_REDIS_URL=store_url,
        OMNISTOCK_BENCH_PEER_REDIS_URL=store_url,
        OMNISTOCK_REAPER_ENABLED="false",
        OMNISTOCK_WEBHOOKS_ENABLED="false",
        OMNISTOCK_CONFIG_REFRESH_SECONDS="3600",
        OMNISTOCK_REDIS_TIMEOUT_SECONDS="60",
        OMNISTOCK_REQUEST_DEADLINE_SECONDS="120",
    )


def _dumps(out_dir: Path) -> dict[str, int]:
    """{scenario: instructions} of the dumps a child made (named by their trigger)."""
    totals: dict[str, int] = {}
    for dump in out_dir.glob("callgrind.out*"):
        text = dump.read_text(errors="replace")
        trigger = re.search(r"^desc: Trigger: Client Request: (\S+)", text, re.M)
        total = re.search(r"^totals: (\d+)", text, re.M)
        if trigger and total:
            totals[trigger.group(1)] = int(total.group(1))
    return totals


def _run_tree(
    tree: Path, store_url: str, shim: Path, args: argparse.Namespace, out: Path
) -> dict[str, int]:
    out.mkdir(parents=True)
    env = bench_env(store_url, tree)
    argv = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}/callgrind.out.%p",
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        str(shim),
        "-n",
        str(args.n),
        "--warm",
        str(args.warm),
    ]
    for scenario in args.scenarios:
        argv += ["--scenario", scenario]
    with open(out / "child.log", "wb") as log:
        done = subprocess.run(argv, env=env, stderr=log, stdout=log, check=False)
    if done.returncode != 0:
        tail = (out / "child.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{tree}: the child failed ({done.returncode}):\n{tail}")
    return _dumps(out)


# -- served: `omnistock serve` (or the peer) under callgrind, switched from outside -----------


def _tree_argv(tree: Path) -> list[str]:
    code = (
        f"import sys; sys.path.insert(0, {str(tree)!r}); import app; "
        f"assert app.__file__.startswith({str(tree)!r}), app.__file__; "
        "from app.cli import main; sys.exit(main())"
    )
    return [sys.executable, "-c", code, "serve"]


def _control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def _served(
    argv: list[str],
    store_url: str,
    scenarios: list[str],
    args: argparse.Namespace,
    out: Path,
    ready: str,
) -> dict[str, float]:
    """{scenario: instructions a served request} of the server `argv` (a port is added)."""
    import httpx

    from app.store.embedded import free_port
    from benchmarks import harness as h

    out.mkdir(parents=True)
    port = free_port()
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
    valgrind.append(f"--callgrind-out-file={out}/callgrind.out.%p")
    env = bench_env(store_url, ROOT)
    server = h.Server([*valgrind, *argv, "--port", str(port)], env, port, out / "server.log")
    answered: dict[str, int] = {}
    try:
        server.wait_ready(ready, timeout=300)
        if ready == "/readyz":
            stock = {"on_hand": 10**9}
            httpx.put(f"{server.base_url}/v1/stock/FLASH-1/dc-1", json=stock, timeout=60)
        for scenario in scenarios:
            c = args.connections
            h.loadgen(server.base_url, scenario, connections=c, duration=60, max_requests=args.warm)
            _control(server.proc.pid, "--instr=on")
            done = h.loadgen(
                server.base_url, scenario, connections=c, duration=300, max_requests=args.n
            )
            _control(server.proc.pid, "--instr=off")
            _control(server.proc.pid, f"--dump={scenario}")
            answered[scenario] = sum(done["statuses"].values())
    finally:
        server.stop()
    totals: dict[str, int] = {}
    for dump in out.glob("callgrind.out*"):
        text = dump.read_text(errors="replace")
        trigger = re.search(r"^desc: Trigger: (.*)$", text, re.M)  # ends with the dump's name
        total = re.search(r"^totals: (\d+)", text, re.M)
        for scenario in answered:
            if trigger and total and trigger.group(1).rstrip().endswith(scenario):
                totals[scenario] = int(total.group(1))
    return {sc: totals.get(sc, 0) / max(1, n) for sc, n in answered.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", dest="trees", action="append", type=Path)
    parser.add_argument("--scenario", dest="scenarios", action="append")
    parser.add_argument("-n", type=int, default=300, help="requests measured per scenario")
    parser.add_argument("--warm", type=int, default=200, help="requests before measuring")
    parser.add_argument("--keep", type=Path, help="directory to keep the dumps and logs in")
    parser.add_argument("--served", action="store_true", help="uvicorn's share included")
    parser.add_argument("--connections", type=int, default=8, help="loadgen's, with --served")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # the shim's path
    args = parser.parse_args()
    args.scenarios = args.scenarios or ["flash", "availability", "healthz"]
    if args.served and args.child is None:
        args.scenarios = [sc for sc in args.scenarios if sc not in ("hold1", "keyed")]
    if args.child:
        if sys.path[0] == str(Path(__file__).resolve().parent):
            sys.path.pop(0)  # run by path: its siblings are not modules of the tree
        try:
            import uvloop
        except ImportError:  # pragma: no cover - served workers run uvloop when it is there
            asyncio.run(_child(args.child, args.scenarios, args.n, args.warm))
        else:
            uvloop.run(_child(args.child, args.scenarios, args.n, args.warm))
        return
    sys.path.insert(0, str(ROOT))
    from benchmarks import harness as h

    trees = [t.resolve() for t in (args.trees or [ROOT])]
    results: dict[Path | str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="omnistock-app-callgrind-") as tmp_name:
        tmp = args.keep or Path(tmp_name)
        tmp.mkdir(parents=True, exist_ok=True)
        with h.store() as s:
            r = h.client(s)
            h.configure(r)
            r.set("stock:FLASH-1", 10**9)  # the peer's counter
            r.close()
            shim = None if args.served else _shim(tmp)
            for k, tree in enumerate(trees):
                out = tmp / f"tree-{k}"
                if shim is not None:
                    totals = _run_tree(tree, s.url, shim, args, out)
                    results[tree] = {sc: totals.get(sc, 0) / args.n for sc in args.scenarios}
                else:
                    own = [sc for sc in args.scenarios if sc != "peer"]
                    results[tree] = _served(_tree_argv(tree), s.url, own, args, out, "/readyz")
            if args.served and "peer" in args.scenarios:
                out = tmp / "peer"
                peer = h.uvicorn_argv("benchmarks.counter_peer.app:app")
                results["peer"] = _served(peer, s.url, ["peer_flash"], args, out, "/healthz")
    how = f"served, {args.connections} connections" if args.served else "one at a time"
    print(f"instructions a request ({args.n} measured after {args.warm} warm, {how})")
    for tree, per_request in results.items():
        figures = "  ".join(f"{sc} {n:,.0f}" for sc, n in per_request.items())
        print(f"  {tree}: {figures}")


if __name__ == "__main__":
    main()
