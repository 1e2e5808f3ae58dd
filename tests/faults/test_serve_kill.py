"""kill -9 of the `omnistock serve` parent (2 workers, embedded store): its workers and its
store exit within 5 s, and a new `omnistock serve` on the same port and data directory starts.

The store is killed once first, so the one that must die with the parent was started by the
store's supervisor thread, not the main thread (PR_SET_PDEATHSIG follows the forking thread).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import ServiceProcess, service_env
from tests.faults.test_worker_kill import worker_pids

pytestmark = [pytest.mark.slow, pytest.mark.fault]


def store_pid(service_pid: int) -> int | None:
    for child in psutil.Process(service_pid).children():
        try:
            if "valkey" in child.name() or "redis" in child.name():
                return child.pid
        except psutil.Error:
            pass
    return None


def restarted_store_pid(service_pid: int, old: int, within: float = 20) -> int:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        pid = store_pid(service_pid)
        if pid is not None and pid != old:
            return pid
        time.sleep(0.1)
    raise AssertionError("the store was not restarted")


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_kill_9_of_the_serve_parent_takes_its_workers_and_store_down_and_frees_the_port(
    tmp_path: Path, start_service: Any
) -> None:
    data = str(tmp_path / "data")
    service = start_service(OMNISTOCK_DATA_DIR=data, OMNISTOCK_WORKERS="2")
    parent = service.proc.pid
    workers = worker_pids(parent)
    assert len(workers) == 2, workers
    first_store = store_pid(parent)
    assert first_store is not None
    os.kill(first_store, signal.SIGKILL)
    store = restarted_store_pid(parent, first_store)  # spawned by the supervisor thread
    service.wait_ready()

    os.kill(parent, signal.SIGKILL)
    killed_at = time.monotonic()
    service.proc.wait()
    left = set(workers) | {store}
    while left and time.monotonic() - killed_at < 10:
        left = {pid for pid in left if alive(pid)}
        time.sleep(0.05)
    gone_after = time.monotonic() - killed_at
    print(f"\n[kill -9 of serve, 2 workers] workers and store gone after {gone_after:.2f} s")
    for pid in left:  # a failed run leaves no orphans behind for the rest of the suite
        os.kill(pid, signal.SIGKILL)
    assert not left, f"still alive {gone_after:.1f} s after the kill: {left}"
    assert gone_after < 5

    again = ServiceProcess(
        service_env(OMNISTOCK_DATA_DIR=data, OMNISTOCK_WORKERS="2"),
        service.port,
        tmp_path / "again.log",
    )
    try:
        again.wait_ready()
    finally:
        again.stop()
