"""A local Valkey cluster: N primaries with R replicas each, AOF on, failover quick. Shared by
the bench (benchmarks/run.py, the cluster rows) and the tests (tests/cluster/support.py adds the
faults: kill, pause, restart, failover), so it depends on nothing of tests/.

Each node runs on a free port with its own free cluster-bus port (the default, port + 10000,
is no valid port above 55535). `cluster-node-timeout` is small (1000 ms) so a killed primary's
replica takes over within a few seconds, and `cluster-require-full-coverage no` (the setting
docs/reliability.md asks of operators) so the healthy slots keep answering meanwhile.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import redis
from redis.crc import key_slot

from app import keys
from app.store.embedded import free_port

SLOTS = 16384


class ClusterError(Exception):
    pass


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.05)
    raise ClusterError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class Node:
    port: int
    bus_port: int
    dir: Path
    proc: subprocess.Popen[bytes] | None = None
    paused: bool = False
    env: dict[str, str] = field(default_factory=dict)  # added to the process's environment

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def client(self, timeout: float = 2.0) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=timeout, socket_connect_timeout=timeout)

    def call(self, *args: object) -> object:
        with self.client() as client:
            return client.execute_command(*args)

    def node_id(self) -> str:
        value = self.call("CLUSTER", "MYID")
        return value.decode() if isinstance(value, bytes) else str(value)

    def info(self, section: str) -> dict[str, str]:
        text = self.call("INFO", section)
        raw = text if isinstance(text, dict) else {}
        return {str(k): str(v) for k, v in raw.items()}

    def cluster_info(self) -> dict[str, str]:
        raw = self.call("CLUSTER", "INFO")
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


@dataclass
class LocalCluster:
    binary: str
    base_dir: Path
    primaries: int = 3
    replicas: int = 1
    appendfsync: str = "everysec"
    node_timeout_ms: int = 1000
    extra_args: tuple[str, ...] = ()
    # Environment variables added to node i's process (e.g. libfaketime for a skewed clock).
    node_env: dict[int, dict[str, str]] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)

    # -- life cycle ------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> Self:
        count = self.primaries * (1 + self.replicas)
        self.nodes = [self._new_node(i) for i in range(count)]
        for i, node in enumerate(self.nodes):
            self.nodes[i] = self._answering(node, i, timeout)
        share = SLOTS // self.primaries
        heads = self.nodes[: self.primaries]
        for i, node in enumerate(heads):
            end = SLOTS - 1 if i == self.primaries - 1 else (i + 1) * share - 1
            node.call("CLUSTER", "ADDSLOTSRANGE", i * share, end)
        for node in self.nodes[1:]:
            self.nodes[0].call("CLUSTER", "MEET", "127.0.0.1", node.port, node.bus_port)
        wait_until(
            lambda: all(int(n.cluster_info()["cluster_known_nodes"]) == count for n in self.nodes),
            timeout,
            "every node to know every other",
        )
        for r in range(self.replicas):
            for i, head in enumerate(heads):
                replica = self.nodes[self.primaries * (1 + r) + i]
                head_id = head.node_id()
                wait_until(
                    lambda rep=replica, hid=head_id: (
                        rep.call("CLUSTER", "REPLICATE", hid)  # type: ignore[misc]
                        is not None
                    ),
                    timeout,
                    f"node {replica.port} to replicate {head.port}",
                )
        self.wait_healthy(timeout)
        return self

    def _new_node(self, i: int) -> Node:
        """Node i, started on two ports free_port() found free."""
        port = free_port()
        node = Node(port, free_port(), self.base_dir / str(port), env=self.node_env.get(i, {}))
        node.dir.mkdir(parents=True)
        self._spawn(node)
        return node

    def _answering(self, node: Node, i: int, timeout: float, tries: int = 3) -> Node:
        """Node i once it answers PING. free_port() only saw its ports free: another process
        (a parallel test's server, another program) may bind one first, and the node exits at
        once; it is then started again on new ports. A node that exited names its log's end."""
        for _ in range(tries):
            wait_until(
                lambda n=node: not n.alive or n.call("PING") is not None,  # type: ignore[misc]
                timeout,
                f"node {node.port} to answer",
            )
            if node.alive:
                return node
            log = (node.dir / "server.log").read_text(errors="replace").strip()
            print(f"node {node.port} exited at start: {log[-300:]}")
            node = self._new_node(i)
        raise ClusterError(f"node {i} exited at start {tries} times: {log[-300:]}")

    def stop(self) -> None:
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                if node.paused:
                    os.kill(node.proc.pid, signal.SIGCONT)
                node.proc.terminate()
        for node in self.nodes:
            if node.proc is not None:
                try:
                    node.proc.wait(10)
                except subprocess.TimeoutExpired:
                    node.proc.kill()
                    node.proc.wait(5)

    def _spawn(self, node: Node) -> None:
        args = [
            self.binary,
            "--port", str(node.port),
            "--bind", "127.0.0.1",
            "--cluster-enabled", "yes",
            "--cluster-port", str(node.bus_port),
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(self.node_timeout_ms),
            "--cluster-require-full-coverage", "no",
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--repl-diskless-sync-delay", "0",
            "--dir", str(node.dir),
            *self.extra_args,
        ]  # fmt: skip
        log = open(node.dir / "server.log", "ab")  # noqa: SIM115 - the child keeps it
        env = {**os.environ, **node.env}
        node.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        node.paused = False

    # -- topology --------------------------------------------------------------------------

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def seeds(self) -> str:
        """Every node, comma-separated: an OMNISTOCK_REDIS_URL."""
        return ",".join(self.urls)

    def live(self) -> list[Node]:
        return [node for node in self.nodes if node.alive and not node.paused]

    def by_port(self, port: int) -> Node:
        return next(node for node in self.nodes if node.port == port)

    def _slots(self) -> list[list[object]]:
        for node in self.live():
            try:
                return list(node.call("CLUSTER", "SLOTS"))  # type: ignore[call-overload]
            except (redis.RedisError, OSError):
                continue
        raise ClusterError("no live node answers CLUSTER SLOTS")

    def primary_for_slot(self, slot: int, table: list[list[object]] | None = None) -> Node:
        for start, end, primary, *_ in table or self._slots():
            if int(start) <= slot <= int(end):  # type: ignore[call-overload]
                return self.by_port(int(primary[1]))  # type: ignore[index]
        raise ClusterError(f"slot {slot} is not covered")

    def primary_nodes(self) -> list[Node]:
        ports = {int(entry[2][1]) for entry in self._slots()}  # type: ignore[index]
        return [node for node in self.nodes if node.port in ports]

    def replicas_of(self, primary: Node) -> list[Node]:
        """The live replicas that CLUSTER NODES (as a live node sees it) gives `primary`."""
        for node in self.live():
            try:
                raw = node.call("CLUSTER", "NODES")
            except (redis.RedisError, OSError):
                continue
            text = raw.decode() if isinstance(raw, bytes) else str(raw)
            rows = [line.split() for line in text.splitlines() if line.strip()]
            ids = {row[0]: int(row[1].split("@")[0].rsplit(":", 1)[1]) for row in rows}
            return [
                self.by_port(ids[row[0]])
                for row in rows
                if "slave" in row[2].split(",")
                and "fail" not in row[2].split(",")
                and ids.get(row[3]) == primary.port
                and self.by_port(ids[row[0]]).alive
            ]
        raise ClusterError("no live node answers CLUSTER NODES")

    def flushall(self) -> None:
        """Empty every primary and wait until the cluster is healthy (after a fault)."""
        self.flush()
        self.wait_healthy()

    def flush(self) -> None:
        """Empty every primary, not waiting for the replicas (which nobody reads): the fast
        reset between the tests of the suite's cluster leg."""
        for node in self.primary_nodes():
            node.call("FLUSHALL")

    def sku_on(self, primary: Node, prefix: str = "sku") -> str:
        """A sku whose partition the primary serves now."""
        table = self._slots()
        for i in range(100_000):
            sku = f"{prefix}-{i}"
            slot = key_slot(keys.tag(keys.partition_of(sku)).encode())
            if self.primary_for_slot(slot, table).port == primary.port:
                return sku
        raise ClusterError(f"no sku found on {primary.port}")

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Every slot served, every live node OK and agreeing, every replica linked and caught
        up with its primary: at or past the offset the primary had when it was asked, read
        first. Under write traffic a replica is never *equal* to its primary for long (the
        primary moves on between the two reads): waiting for equality there timed out
        (test_failover restarting a node under traffic, 1 run in 10 beside 2 busy loops)."""
        why = "not checked yet"

        def healthy() -> bool:
            nonlocal why
            live = self.live()
            why = "a node's cluster_state is not ok"
            if not all(n.cluster_info()["cluster_state"] == "ok" for n in live):
                return False
            why = "a node does not see every slot ok"
            if not all(int(n.cluster_info()["cluster_slots_ok"]) == SLOTS for n in live):
                return False
            heads = self.primary_nodes()
            why = "a primary is not alive"
            if any(not head.alive for head in heads):
                return False
            replicas = {head.port: self.replicas_of(head) for head in heads}
            why = "a live node is neither a primary nor a known replica"
            if sum(len(r) for r in replicas.values()) != len(live) - len(heads):
                return False
            for head in heads:
                offset = int(head.info("replication").get("master_repl_offset", 0))
                for replica in replicas[head.port]:
                    info = replica.info("replication")
                    why = f"replica {replica.port}'s link to {head.port} is not up"
                    if info.get("master_link_status") != "up":
                        return False
                    why = f"replica {replica.port} is behind {head.port}"
                    if int(info.get("slave_repl_offset", -1)) < offset:
                        return False
            return True

        try:
            wait_until(healthy, timeout, "the cluster to be healthy")
        except ClusterError as error:
            raise ClusterError(f"{error}: {why}") from error
