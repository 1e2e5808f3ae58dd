"""Every store command of the read side, so the rest never builds a Redis call.

A *round* reads the partitions' streams node by node: for each node one pipeline, the node's
TIME first, then the reads of the partitions it serves. The round's `t0` is the smallest of
the nodes' TIMEs (minus a hold-back margin on a cluster), and readers deliver only entries
stamped below `t0`. Two implementations of the one abstraction:

- `ServerSource` (one server): one pipeline, TIME + one XREAD over all 256 streams; the hub
  blocks on that single XREAD between rounds.
- `ClusterSource` (OMNISTOCK_REDIS_CLUSTER=1): the partitions grouped by the node that serves
  their slot (from the cluster client's slot map), one pipeline per node, run concurrently,
  one XREAD/XRANGE per partition (a multi-key read across slots is CROSSSLOT). Between rounds
  the hub polls (a blocking read cannot span slots).

Why `t0 = min over nodes of TIME_n` gives one total order with no gap and no duplicate:
(1) Within a node. Node n stamps an entry with its own clock, `ms >= ` the node's time when
the script ran, and runs one command at a time. TIME_n runs before the node's reads in the
same pipeline, so an entry written after TIME_n ran has `ms >= TIME_n` (the node's clock does
not go back); every entry with `ms < TIME_n` was written before and is in the read.
(2) Across nodes. Every node's read is complete below its own TIME_n, hence below
`t0 = min TIME_n`; and any entry written after the round, on any node, has `ms >= TIME_n >=
t0`. So the entries below t0 are exactly the ones the round read: delivering them sorted by
(ms, seq, partition) fixes the order of everything below t0 for good; a later round only adds
entries at or above its own t0, which is never below this one (each node's TIME only grows).
A round also stops a partition at its last read entry when its read was full (COUNT), as on
one server.
(3) Across a failover. A promoted replica stamps with its own clock, which may be behind the
dead primary's: a new entry could then get an id below what was already delivered (a gap for
every reader past it). Two things bound this. An automatic failover takes at least
`cluster-node-timeout` (15 s by default) during which the failed node's partitions cannot be
read, so the feed does not move and the replica's clock has to be that far behind to matter;
a manual `CLUSTER FAILOVER` takes milliseconds, so `t0` is held back by
OMNISTOCK_EVENT_CLOCK_MARGIN_MS (50 ms): entries are delivered only once every node's clock
is that far past them, which covers NTP-grade skew between a primary and its replica at the
price of that much delivery lag. A node answering a TIME below the feed's frontier (the
assumption broken) is logged as an error and counted (`omnistock_event_clock_behind_total`).

Store failures: a node that does not answer, a MOVED/ASK/CLUSTERDOWN/TRYAGAIN reply or an
unknown slot refreshes the slot map, and the round fails with a `ConnectionError` (a clean 503
for the log, a wait for SSE and the hub); a round is only reads, so retrying it is safe.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import (
    AskError,
    ClusterError,
    ConnectionError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)

from app import keys
from app.settings import Settings
from app.store.connection import node_client

log = logging.getLogger("omnistock.events")

CLOCK_BEHIND = Counter(
    "omnistock_event_clock_behind_total",
    "Rounds in which a store node's TIME was below events already delivered (clock skew "
    "beyond OMNISTOCK_EVENT_CLOCK_MARGIN_MS, e.g. after a failover): order may be broken.",
)

Entry = tuple[str, dict[str, str]]  # (stream id, fields)
Batch = dict[int, list[Entry]]  # partition -> entries, oldest first
Read = Callable[[Any, list[int]], None]  # adds a node's reads of its partitions to a pipeline
IDLE_POLL_FACTOR = 8  # an idle cluster feed is polled every poll_ms * this
# Errors that mean "the slot map is stale or the node is failing over".
_TOPOLOGY = (AskError, TryAgainError, ClusterError, RedisClusterException)


class StreamSource(ABC):
    """The read side's store access; see the module doc for the round and its `t0`."""

    def __init__(self, margin_ms: int = 0) -> None:
        self.margin_ms = margin_ms
        self._frontier = 0  # the highest t0 handed out

    # -- what a node group is and how it is read: the two implementations ------------------

    @abstractmethod
    async def _groups(self, partitions: Iterable[int], every_node: bool) -> list[Group]:
        """The clients to read and the partitions each serves (with `every_node`, every
        node, even one serving none of them: its TIME bounds t0)."""

    @abstractmethod
    def _read_after(self, after: dict[int, str], count: int) -> Read:
        """The non-blocking read of everything after each partition's id."""

    @abstractmethod
    async def wait(self, after: dict[int, str], count: int, block_ms: int) -> Batch:
        """Wait until some partition may have an entry after its id (or `block_ms` passes);
        what is already known to be there, if anything."""

    def _failed(self, exc: BaseException) -> NoReturn:
        """A round failed with `exc`: raise what callers see (a ConnectionError for 503)."""
        raise exc

    async def aclose(self) -> None:  # noqa: B027  (only the cluster opens clients)
        """Close what the source opened itself (the cluster's per-node clients)."""

    # -- the rounds ------------------------------------------------------------------------

    async def time_ms(self) -> int:
        t0, _ = await self._round([], lambda pipe, parts: None, with_time=True)
        assert t0 is not None
        return t0

    async def ranges(
        self, starts: dict[int, str], count: int, with_time: bool
    ) -> tuple[int | None, Batch]:
        """XRANGE of each partition from its (inclusive) start id, up to `count` entries;
        with `with_time`, the round's t0."""

        def read(pipe: Any, parts: list[int]) -> None:
            for p in parts:
                pipe.xrange(keys.events(p), min=starts[p], max="+", count=count)

        t0, replies = await self._round(list(starts), read, with_time)
        out: Batch = {}
        for parts, reply in replies:
            out.update(zip(parts, reply, strict=True))
        return t0, out

    async def tail(self, after: dict[int, str], count: int) -> tuple[int, Batch]:
        """The round's t0, and everything after each partition's id (exclusive)."""
        t0, replies = await self._round(list(after), self._read_after(after, count), True)
        assert t0 is not None
        out: Batch = {}
        for _, reply in replies:
            for item in reply:
                out.update(_batch(item))
        return t0, out

    async def stream_info(self, partitions: list[int]) -> dict[int, dict[str, Any]]:
        """XINFO STREAM of each partition that has a stream."""

        def read(pipe: Any, parts: list[int]) -> None:
            for p in parts:
                pipe.xinfo_stream(keys.events(p))

        _, replies = await self._round(partitions, read, False, raise_on_error=False)
        out: dict[int, dict[str, Any]] = {}
        for parts, reply in replies:
            for p, info in zip(parts, reply, strict=True):
                if isinstance(info, _TOPOLOGY) or (
                    isinstance(info, Exception) and not isinstance(info, ResponseError)
                ):
                    self._failed(info)
                if not isinstance(info, ResponseError):  # no such key: never had an event
                    out[p] = info
        return out

    async def _round(
        self, partitions: list[int], read: Read, with_time: bool, raise_on_error: bool = True
    ) -> tuple[int | None, list[tuple[list[int], list[Any]]]]:
        """One pipeline per node (concurrently); the replies of each node's reads, and t0."""
        floor = self._frontier  # handed out before this round began: no TIME may be below
        try:
            groups = await self._groups(partitions, every_node=with_time)
            groups = [g for g in groups if with_time or g.partitions]
            if len(groups) == 1:  # one server: no task to run one pipeline
                results: list[Any] = [await _pipeline(groups[0], read, with_time, raise_on_error)]
            else:
                results = await asyncio.gather(
                    *(_pipeline(g, read, with_time, raise_on_error) for g in groups),
                    return_exceptions=True,
                )
        except (RedisError, RedisClusterException, OSError) as exc:
            self._failed(exc)
        for result in results:
            if isinstance(result, Exception):
                self._failed(result)
            if isinstance(result, BaseException):
                raise result
        done = [(g, r) for g, r in zip(groups, results, strict=True) if isinstance(r, tuple)]
        replies = [(g.partitions, reply) for g, (_, reply) in done]
        if not with_time:
            return None, replies
        times = [(g.name, t) for g, (t, _) in done if t is not None]
        t0 = min(t for _, t in times) - self.margin_ms
        self._check_clocks(times, floor)
        self._frontier = max(self._frontier, t0)
        return t0, replies

    def _check_clocks(self, times: list[tuple[str, int]], floor: int) -> None:
        for name, t in times:
            if t < floor:
                CLOCK_BEHIND.inc()
                log.error(
                    "event feed: store node %s's clock is %d ms behind events already "
                    "delivered (more skew than OMNISTOCK_EVENT_CLOCK_MARGIN_MS=%d): events it "
                    "writes in that window may come out of order",
                    name,
                    floor - t,
                    self.margin_ms,
                )


class Group:
    """One node to read: its client and the partitions it serves."""

    def __init__(self, name: str, client: Redis, partitions: list[int]) -> None:
        self.name = name
        self.client = client
        self.partitions = partitions


async def _pipeline(
    group: Group, read: Read, with_time: bool, raise_on_error: bool
) -> tuple[int | None, list[Any]]:
    async with group.client.pipeline(transaction=False) as pipe:
        if with_time:
            pipe.time()
        if group.partitions:
            read(pipe, group.partitions)
        replies = await pipe.execute(raise_on_error=raise_on_error)
    if not with_time:
        return None, replies
    t = replies.pop(0)
    if isinstance(t, Exception):
        raise t
    return _ms(t), replies


class ServerSource(StreamSource):
    """One server: one pipeline per round, and a blocking XREAD over every stream."""

    def __init__(self, redis: Redis) -> None:
        super().__init__()
        self._redis = redis

    async def _groups(self, partitions: Iterable[int], every_node: bool) -> list[Group]:
        return [Group("store", self._redis, list(partitions))]

    def _read_after(self, after: dict[int, str], count: int) -> Read:
        streams = _streams(after)
        return lambda pipe, parts: pipe.xread(streams, count=count)

    async def wait(self, after: dict[int, str], count: int, block_ms: int) -> Batch:
        reply = await self._redis.xread(_streams(after), count=count, block=block_ms)
        return _batch(reply)


class ClusterSource(StreamSource):
    """A cluster: one pipeline per primary, with the slot map of the cluster client."""

    def __init__(
        self,
        cluster: RedisCluster,
        node_client: Callable[[str, int], Redis],
        margin_ms: int,
        poll_ms: int,
    ) -> None:
        super().__init__(margin_ms)
        self._cluster = cluster
        self._node_client = node_client
        self._poll_s = poll_ms / 1000
        self._idle_polls = 0  # polls in a row that found nothing
        self._clients: dict[str, Redis] = {}
        self._owner: dict[int, str] = {}  # partition -> node name, from the slot map
        self._stale = True

    async def _groups(self, partitions: Iterable[int], every_node: bool) -> list[Group]:
        if self._stale:
            await self._refresh()
        by_node: dict[str, list[int]] = {name: [] for name in self._clients} if every_node else {}
        for p in partitions:
            by_node.setdefault(self._owner[p], []).append(p)
        return [Group(name, self._clients[name], parts) for name, parts in by_node.items()]

    async def _refresh(self) -> None:
        if self._cluster.nodes_manager.slots_cache:
            await self._cluster.nodes_manager.initialize()  # re-read the slot map
        else:
            await self._cluster.initialize()
        owner: dict[int, str] = {}
        clients: dict[str, Redis] = {}
        for p in range(keys.PARTITIONS):
            node = self._cluster.get_node_from_key(keys.events(p))
            if node is None:
                raise ConnectionError(f"no store node serves event partition {p}")
            owner[p] = node.name
            if node.name not in clients:
                kept = self._clients.pop(node.name, None)
                clients[node.name] = kept or self._node_client(str(node.host), int(node.port))
        for gone in self._clients.values():  # nodes no longer primaries of any partition
            await gone.aclose()
        self._owner, self._clients, self._stale = owner, clients, False

    def _failed(self, exc: BaseException) -> NoReturn:
        self._stale = True  # the next round re-reads the slot map first
        if isinstance(exc, ConnectionError) or not isinstance(exc, Exception):
            raise exc
        raise ConnectionError(f"event feed: the store cluster did not answer ({exc})") from exc

    def _read_after(self, after: dict[int, str], count: int) -> Read:
        def read(pipe: Any, parts: list[int]) -> None:
            for p in parts:
                pipe.xread({keys.events(p): after[p]}, count=count)

        return read

    async def tail(self, after: dict[int, str], count: int) -> tuple[int, Batch]:
        t0, batch = await super().tail(after, count)
        if batch:
            self._idle_polls = 0
        return t0, batch

    async def wait(self, after: dict[int, str], count: int, block_ms: int) -> Batch:
        """Sleep before the next poll: `poll_ms`, doubling while polls find nothing, up to
        IDLE_POLL_FACTOR times (a poll is a pipeline of ~86 reads per node, not free)."""
        delay = self._poll_s * min(2**self._idle_polls, IDLE_POLL_FACTOR)
        self._idle_polls = min(self._idle_polls + 1, 16)
        await asyncio.sleep(min(delay, block_ms / 1000))
        return {}

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients = {}
        self._stale = True


def event_source(settings: Settings, redis: Redis) -> StreamSource:
    """The source for the store `redis` connects to (a cluster client on a cluster)."""
    if not settings.redis_cluster:
        return ServerSource(redis)
    return ClusterSource(
        redis,  # type: ignore[arg-type]  # connect() hands a RedisCluster as a Redis
        lambda host, port: node_client(settings, host, port),
        settings.event_clock_margin_ms,
        settings.event_poll_ms,
    )


def _streams(after: dict[int, str]) -> dict[Any, Any]:
    return {keys.events(p): last for p, last in after.items()}


_PARTITION_OF_KEY = {keys.events(p): p for p in range(keys.PARTITIONS)}


def _batch(reply: Any) -> Batch:
    """An XREAD reply as partition -> entries (partitions with none left out)."""
    if not reply:
        return {}
    out: Batch = {}
    if isinstance(reply, dict):  # RESP3: {key: [entries]}, or {key: entries} (unified)
        pairs = [(k, v[0] if v and isinstance(v[0], list) else v) for k, v in reply.items()]
    else:  # RESP2: [[key, entries], ...]
        pairs = [(k, v) for k, v in reply]
    for key, entries in pairs:
        if entries:
            out[_PARTITION_OF_KEY[key]] = list(entries)
    return out


def _ms(time_reply: tuple[int, int]) -> int:
    seconds, micros = time_reply
    return int(seconds) * 1000 + int(micros) // 1000
