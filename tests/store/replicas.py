"""A primary and one replica, two real servers the tests start (never port 6379), for the
tests of OMNISTOCK_WAIT_REPLICAS."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from redis import Redis as SyncRedis

from app.store.embedded import EmbeddedStore
from benchmarks.harness import follow


class Replicated:
    def __init__(self, base: Path) -> None:
        self.primary = EmbeddedStore(base / "primary", fsync="everysec", supervise=False)
        self.replica = EmbeddedStore(base / "replica", fsync="everysec", supervise=False)

    def start(self) -> None:
        self.primary.start()
        self.replica.start()
        follow(self.replica, self.primary)

    def stop(self) -> None:
        self.resume_replica()
        self.replica.stop()
        self.primary.stop()

    def primary_client(self) -> SyncRedis:
        return SyncRedis.from_url(self.primary.url, decode_responses=True)

    def replica_client(self) -> SyncRedis:
        return SyncRedis.from_url(self.replica.url, decode_responses=True)

    def wait_link_up(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        with self.replica_client() as replica, self.primary_client() as primary:
            while time.monotonic() < deadline:
                link = replica.info("replication").get("master_link_status")
                offset = primary.info("replication")["master_repl_offset"]
                if link == "up" and replica.info("replication")["slave_repl_offset"] >= offset:
                    return
                time.sleep(0.02)
        raise AssertionError("the replica did not catch up")

    def stop_replica(self) -> None:
        """The replica stops answering (its link stays open: the primary still counts it)."""
        assert self.replica.pid is not None
        os.kill(self.replica.pid, signal.SIGSTOP)

    def resume_replica(self) -> None:
        assert self.replica.pid is not None
        os.kill(self.replica.pid, signal.SIGCONT)

    def wait_calls(self, command: str = "wait") -> int:
        with self.primary_client() as primary:
            stats = primary.info("commandstats").get(f"cmdstat_{command}")
        return int(stats["calls"]) if stats else 0

    def kill_primary(self) -> None:
        assert self.primary.pid is not None
        os.kill(self.primary.pid, signal.SIGKILL)

    def promote_replica(self) -> None:
        """A failover, as Sentinel or a cluster would do it: the replica becomes a primary
        with whatever it holds."""
        self.resume_replica()
        with self.replica_client() as replica:
            replica.execute_command("REPLICAOF", "NO", "ONE")
