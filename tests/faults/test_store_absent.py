"""The service starts without its store (no crash loop), says so on /readyz, and serves
within 1 s of the store coming up."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest

from app.store.embedded import free_port
from tests.conftest import ServiceProcess, bare_store, service_env

pytestmark = pytest.mark.fault


def test_the_service_starts_without_its_store_and_serves_within_1_s_of_its_arrival(
    tmp_path: Path, server_binary: str
) -> None:
    store_port, port = free_port(), free_port()
    service = ServiceProcess(
        service_env(OMNISTOCK_REDIS_URL=f"redis://127.0.0.1:{store_port}/0"),
        port,
        tmp_path / "service.log",
    )
    store: subprocess.Popen[bytes] | None = None
    try:
        with httpx.Client(base_url=service.base_url, timeout=5) as c:
            deadline = time.monotonic() + 30
            while True:  # up, though its store is not
                try:
                    if c.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, service.log_path.read_text()[-2000:]
                time.sleep(0.1)
            ready = c.get("/readyz")
            assert ready.status_code == 503 and ready.headers["retry-after"] == "1"
            assert c.get("/v1/stock/sku-1").json()["code"] == "store_unavailable"
            time.sleep(1.5)
            assert service.proc.poll() is None  # still the same process: no crash loop

            store = bare_store(server_binary, store_port, tmp_path)
            started = time.monotonic()
            while c.get("/readyz").status_code != 200:
                assert time.monotonic() - started < 10
                time.sleep(0.01)
            ready_after = time.monotonic() - started
            assert c.put("/v1/locations/dc", json={"priority": 1}).status_code == 200
        print(
            f"\n[store absent at start] /readyz green {ready_after:.3f} s after the store started"
        )
        assert ready_after < 1.0 + 0.5  # 1 s of recovery, plus the server's own start
    finally:
        service.stop()
        if store is not None:
            store.kill()
            store.wait()
