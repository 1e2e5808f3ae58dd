"""Shared by the SSE benchmarks: a private `omnistock serve` (embedded store in a temp dir,
loopback only), raw SSE clients, and percentiles."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.store.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Service:
    proc: subprocess.Popen[bytes]
    port: int
    data_dir: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_kib(self) -> int:
        """Resident memory of the service process (uvicorn runs in it with one worker; the
        embedded store is a separate process and not counted)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")


@contextlib.contextmanager
def service(**env_values: str) -> Iterator[Service]:
    """`omnistock serve` on a free loopback port with its own embedded store."""
    with tempfile.TemporaryDirectory(prefix="omnistock-sse-bench-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OMNISTOCK_")}
        env.update(OMNISTOCK_DATA_DIR=tmp, OMNISTOCK_HOST="127.0.0.1", **env_values)
        port = free_port()
        log = open(Path(tmp) / "service.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(port), "--log-level", "warning"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        svc = Service(proc, port, Path(tmp))
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((Path(tmp) / "service.log").read_text()[-2000:])
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{svc.base_url}/readyz", timeout=1).status_code == 200:
                        break
                time.sleep(0.1)
            yield svc
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


async def seed(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as c:
        r = await c.put("/v1/locations/dc", json={"priority": 1, "ship": True})
        r.raise_for_status()
        r = await c.put("/v1/channels/web", json={"locations": ["dc"], "low_stock_threshold": 2})
        r.raise_for_status()


@dataclass
class RawSSE:
    """One SSE connection on a plain socket (cheap enough for a thousand in one process):
    counts the events and notes when the last one was read."""

    port: int
    query: str = ""
    events: int = 0
    last_at: float = 0.0  # monotonic time the last event was read
    _task: asyncio.Task[None] | None = None
    _writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        self._writer = writer
        writer.write(f"GET /v1/events{self.query} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.decode(errors="replace"))
        buf = b""
        while b"retry:" not in buf:  # subscribed once the first line arrives
            buf += await reader.read(4096)
        self._task = asyncio.create_task(self._read(reader, buf))

    async def _read(self, reader: asyncio.StreamReader, buf: bytes) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    return
                now = time.monotonic()
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if line.startswith(b"id: "):
                        self.events += 1
                        self.last_at = now

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._writer:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]
