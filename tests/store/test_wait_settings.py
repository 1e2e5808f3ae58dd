"""`omnistock serve` refuses wait settings that cannot work (exit 2, before it starts)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from app.store.embedded import EmbeddedStore, free_port
from tests.conftest import service_env

pytestmark = pytest.mark.slow


def serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "serve", "--log-format", "text", "--port", "1"],
        env=service_env(OMNISTOCK_DATA_DIR=str(tmp_path / "data"), **env),
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_wait_replicas_with_the_embedded_store_refuses_to_start(tmp_path: Path) -> None:
    done = serve(tmp_path, OMNISTOCK_WAIT_REPLICAS="1")
    assert done.returncode == 2, done.stderr
    assert "OMNISTOCK_WAIT_REPLICAS needs a store with replicas" in done.stderr
    assert not (tmp_path / "data").exists()


def test_wait_aof_on_a_store_without_an_append_only_file_refuses_to_start(
    tmp_path: Path,
) -> None:
    with EmbeddedStore(tmp_path / "store", fsync="everysec", supervise=False) as store:
        with redis.Redis.from_url(store.url) as admin:
            admin.config_set("appendonly", "no")
        done = serve(tmp_path, OMNISTOCK_REDIS_URL=store.url, OMNISTOCK_WAIT_AOF="1")
    assert done.returncode == 2, done.stderr
    assert "needs the store's append-only file (appendonly yes)" in done.stderr


@pytest.fixture
def redis_7_0() -> Iterator[str]:
    """A Redis older than 7.2 (no WAITAOF), where the machine has one."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no redis-server binary")
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    if "v=7.0." not in version and "v=6." not in version:
        pytest.skip(f"redis-server has WAITAOF: {version}")
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", data],
            stdout=subprocess.DEVNULL,
        )
        try:
            client = redis.Redis(port=port)
            for _ in range(100):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            client.close()
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(10)


def test_wait_aof_on_a_store_without_waitaof_refuses_to_start(
    tmp_path: Path, redis_7_0: str
) -> None:
    done = serve(tmp_path, OMNISTOCK_REDIS_URL=redis_7_0, OMNISTOCK_WAIT_AOF="1")
    assert done.returncode == 2, done.stderr
    assert "OMNISTOCK_WAIT_AOF=1 needs WAITAOF (Redis 7.2+, Valkey 8+)" in done.stderr
