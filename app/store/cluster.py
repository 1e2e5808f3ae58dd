"""The Redis Cluster client, held to the single server's discipline.

- Seeds: OMNISTOCK_REDIS_URL may name several nodes, comma-separated; the client asks them in
  turn for the slot map, so one seed down does not stop the service.
- No re-sends: redis-py's cluster client re-sends a command on its own after a timeout, a
  broken connection or CLUSTERDOWN (10 times by default). A timed-out FCALL may have run,
  so that could apply a change twice: the client here re-sends nothing (retries 0, and the
  per-node connections are built without retries by redis-py). It still follows MOVED, ASK
  and TRYAGAIN: those replies mean the node did not run the command.
- FCALL is routed by its declared keys here, like EVALSHA (`_determine_slot`), not by asking
  the server for them on every call.
- Errors: redis-py raises cluster errors that are not ConnectionError (CLUSTERDOWN, TRYAGAIN
  after the redirect budget, "TTL exhausted") or not even RedisError (SlotNotCoveredError,
  "Redis Cluster cannot be connected" when no seed answers). This client turns every one of
  them into StoreUnavailable, a ConnectionError: "the store is not reachable now", which the
  API answers 503 with Retry-After and the CLI exit code 3, exactly as a single server down.
  So is a connection a dying node dropped under a command, which redis-py reports as a
  RuntimeError or AttributeError (`_connection_dropped`; both seen as 500s under failover).
- Pool limit: redis-py's cluster pool fails a call at once when a node's `max_connections`
  are all in use (MaxConnectionsError, a 503); a single server's blocking pool makes it wait.
  So a burst of concurrent requests on one sku (one node) got 503s on a cluster only. Here a
  call first waits (up to the socket timeout) for one of `max_connections` permits shared by
  every node: no node ever has more calls in flight, and a burst queues as on one server.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.cluster
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.asyncio.connection import SSLConnection, parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    ClusterError,
    ConnectionError,
    CrossSlotTransactionError,
    InvalidPipelineStack,
    RedisClusterException,
    SlotNotCoveredError,
    TimeoutError,
    TryAgainError,
)

from app import keys


class StoreUnavailable(ConnectionError):
    """The cluster cannot serve the command now (no node reachable, slot not served,
    failover in progress): the caller answers as for a store that is down."""


# What a cluster raises while a node is down or a failover runs, beside ConnectionError and
# TimeoutError: ClusterError covers CLUSTERDOWN/MASTERDOWN and "TTL exhausted"; the
# RedisClusterException family covers SlotNotCoveredError and "cannot be connected".
CLUSTER_DOWN_ERRORS: tuple[type[Exception], ...] = (
    ClusterError,
    TryAgainError,
    RedisClusterException,
)
# Programming errors, not outages: never turned into a 503.
CLUSTER_BUGS: tuple[type[Exception], ...] = (CrossSlotTransactionError, InvalidPipelineStack)


# Stream methods redis-py calls on a connection's reader/writer: an AttributeError on None for
# one of them means another task (a slot-map refresh closing a dead node's connections) tore
# the connection down under this command.
_STREAM_METHODS = frozenset({"write", "writelines", "drain", "read", "readline", "readexactly"})


def _connection_dropped(exc: Exception) -> bool:
    """A connection to a node that just died, as redis-py reports it besides ConnectionError:
    uvloop's RuntimeError for a write on a closed transport ("... the handler is closed"),
    or an AttributeError on the reader/writer a concurrent disconnect set to None. Either way
    the command's outcome is unknown, exactly as after a timeout: a 503."""
    if isinstance(exc, RuntimeError):
        return "handler is closed" in str(exc)
    return isinstance(exc, AttributeError) and exc.obj is None and exc.name in _STREAM_METHODS


def _unavailable(exc: Exception) -> StoreUnavailable:
    error = StoreUnavailable(f"cluster unavailable: {exc}")
    error.__cause__ = exc
    return error


class ClusterStore(RedisCluster):
    """RedisCluster that re-sends nothing, reports every outage as StoreUnavailable and
    queues calls beyond the pool limit (module doc)."""

    def __init__(self, *args: Any, queue_timeout: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queue_timeout = queue_timeout
        self._in_flight = asyncio.Semaphore(kwargs.get("max_connections", 100))

    @contextlib.asynccontextmanager
    async def _permit(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self._queue_timeout):
                await self._in_flight.acquire()
        except builtins.TimeoutError as exc:  # asyncio's, not redis-py's
            raise StoreUnavailable("no free store connection within the timeout") from exc
        try:
            yield
        finally:
            self._in_flight.release()

    async def initialize(self, *args: Any, **kwargs: Any) -> ClusterStore:
        """redis-py's initialize, but it asks a live primary for the command table (once):
        redis-py asks the first primary of the slot map, so while that one is dead (listed
        until its failover) every re-initialization failed, on every node's slots."""
        if not self._initialize:
            return self
        if not self._lock:
            self._lock = asyncio.Lock()
        async with self._lock:
            if not self._initialize:
                return self
            try:
                await self.nodes_manager.initialize(*args, **kwargs)
                self._seen().update(self.nodes_manager.nodes_cache.values())
                await self._use_a_live_default_node()
                self._initialize = False
            except BaseException as exc:
                await self.nodes_manager.aclose()
                await self.nodes_manager.aclose("startup_nodes")
                if isinstance(exc, CLUSTER_DOWN_ERRORS) and not isinstance(exc, CLUSTER_BUGS):
                    raise _unavailable(exc) from exc
                raise
        return self

    def _seen(self) -> set[ClusterNode]:
        if not hasattr(self, "_seen_nodes"):
            self._seen_nodes: set[ClusterNode] = set()
        return self._seen_nodes

    async def aclose(self) -> None:
        """Also closes the nodes a topology change dropped from redis-py's cache: their
        connections in use at the time are left open there. And closes the nodes while a
        ConnectionError has left redis-py to re-initialize (`_initialize`): its aclose() then
        closes nothing, not even the seed nodes' connections that read the slot map."""
        await super().aclose()
        for which in ("nodes_cache", "startup_nodes"):
            with contextlib.suppress(Exception):
                await self.nodes_manager.aclose(which)
        for node in self._seen():
            with contextlib.suppress(Exception):
                await node.disconnect()

    async def _use_a_live_default_node(self) -> None:
        """The default node (keyless commands, the command table) is a primary that answers."""
        default = self.get_default_node()
        error: Exception | None = None
        for node in [default, *(n for n in self.get_primaries() if n != default)]:
            try:
                if self.commands_parser.commands:
                    await node.execute_command("PING")
                else:
                    await self.commands_parser.initialize(node)
            except (ConnectionError, TimeoutError) as exc:
                error = exc
                continue
            self.nodes_manager.default_node = node
            return
        raise error or StoreUnavailable("no primary answers")

    async def _determine_slot(self, command: str, *args: Any) -> int:
        """FCALL's slot from its declared keys, as redis-py does for EVALSHA: redis-py would
        ask the server (`COMMAND GETKEYS`, one more round trip per call: FCALL's keys are
        "movable")."""
        if command.upper() in ("FCALL", "FCALL_RO"):
            command = "EVALSHA"  # the same layout: name, numkeys, keys..., args...
        return await super()._determine_slot(command, *args)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            async with self._permit():
                return await super().execute_command(*args, **kwargs)
        except CLUSTER_BUGS:
            raise
        except CLUSTER_DOWN_ERRORS as exc:
            raise _unavailable(exc) from exc
        except (RuntimeError, AttributeError) as exc:
            if not _connection_dropped(exc):
                raise
            self._initialize = True  # as redis-py does after a ConnectionError
            raise _unavailable(exc) from exc

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        if shard_hint:
            raise RedisClusterException("shard_hint is deprecated in cluster mode")
        return _Pipeline(self, transaction)  # type: ignore[abstract]  # as redis-py's own


_PIPELINE_FAILURES: tuple[type[Exception], ...] = (
    *CLUSTER_DOWN_ERRORS,
    ConnectionError,
    TimeoutError,
)


class _Pipeline(ClusterPipeline):
    cluster_client: ClusterStore

    async def execute(self, *args: Any, **kwargs: Any) -> list[Any]:
        try:
            async with self.cluster_client._permit():
                return await super().execute(*args, **kwargs)
        except CLUSTER_BUGS:
            raise
        except _PIPELINE_FAILURES as exc:
            # Without retries redis-py's pipeline never re-reads the slot map after a node
            # failed: flag it as its single commands do, or it keeps asking the dead node.
            self.cluster_client._initialize = True
            if isinstance(exc, (ConnectionError, TimeoutError)):
                raise
            raise _unavailable(exc) from exc
        except (RuntimeError, AttributeError) as exc:
            if not _connection_dropped(exc):
                raise
            self.cluster_client._initialize = True
            raise _unavailable(exc) from exc


def split_seeds(url: str) -> list[str]:
    """`redis://a:1,redis://b:2` (or `redis://a:1,b:2`: scheme and credentials of the first)
    as one URL per node."""
    parts = [part.strip() for part in url.split(",") if part.strip()]
    if not parts:
        raise ValueError("OMNISTOCK_REDIS_URL names no node")
    first = urlsplit(parts[0])
    prefix = f"{first.scheme}://" + (
        f"{first.netloc.rsplit('@', 1)[0]}@" if "@" in first.netloc else ""
    )
    return [part if "://" in part else prefix + part for part in parts]


def _seed_options(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """(host, port) of every seed of `url`, and the connection options of the first."""
    seeds = split_seeds(url)
    params: dict[str, Any] = dict(parse_url(seeds[0]))
    if params.pop("connection_class", None) is SSLConnection:
        params["ssl"] = True
    params.pop("host", None)
    params.pop("port", None)
    where: list[dict[str, Any]] = [dict(parse_url(seed)) for seed in seeds]
    return [(str(w.get("host", "127.0.0.1")), int(w.get("port", 6379))) for w in where], params


def cluster_client(url: str, **options: Any) -> ClusterStore:
    """A cluster client seeded with every node of `url` (comma-separated); credentials and
    TLS from the first. `options` are redis-py connection arguments (timeouts, pool size)."""
    seeds, params = _seed_options(url)
    return ClusterStore(
        startup_nodes=[ClusterNode(host, port) for host, port in seeds],
        retry=Retry(NoBackoff(), 0),
        # Slots of a dead primary may be uncovered for a moment: serve the others.
        require_full_coverage=False,
        queue_timeout=options.get("socket_timeout"),
        **{**params, **options},
    )


class _FcallSlot:
    """FCALL's keys and slot from its declared keys, for the blocking client and its
    pipelines (as ClusterStore._determine_slot does for the service's): redis-py would ask
    the server (COMMAND GETKEYS, one more round trip per call: FCALL's keys are "movable")."""

    def determine_slot(self, *args: Any) -> Any:
        if _is_fcall(args):
            args = ("EVALSHA", *args[1:])  # the same layout: name, numkeys, keys..., args...
        return super().determine_slot(*args)  # type: ignore[misc]

    def _get_command_keys(self, *args: Any) -> Any:
        if _is_fcall(args):
            return list(args[3 : 3 + int(args[2])])
        return super()._get_command_keys(*args)  # type: ignore[misc]


def _is_fcall(args: tuple[Any, ...]) -> bool:
    name = args[0].decode() if args and isinstance(args[0], bytes) else str(args[0])
    return name.upper() in ("FCALL", "FCALL_RO") and len(args) >= 3


class _SyncPipeline(_FcallSlot, redis.cluster.ClusterPipeline):
    pass


class _SyncClusterStore(_FcallSlot, redis.RedisCluster):
    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        pipe = super().pipeline(transaction, shard_hint)  # type: ignore[no-untyped-call]
        pipe.__class__ = _SyncPipeline  # redis-py's own, with FCALL routed as above
        return pipe


def sync_cluster_client(url: str, **options: Any) -> redis.RedisCluster:
    """The blocking client of `omnistock import`, seeded the same way. It keeps redis-py's
    retries: the import script sets absolute values, so a re-sent batch changes nothing."""
    seeds, params = _seed_options(url)
    return _SyncClusterStore(
        startup_nodes=[
            redis.cluster.ClusterNode(host, port)  # type: ignore[no-untyped-call]
            for host, port in seeds
        ],
        **{**params, **options},
    )


async def partitions_by_node(
    redis: Any, partitions: Sequence[int] | None = None
) -> list[list[int]]:
    """`partitions` (default: all) grouped by the primary that serves them now: one group on a
    single server. For per-node work that must not stop when one node is down."""
    wanted = list(range(keys.PARTITIONS)) if partitions is None else list(partitions)
    if not isinstance(redis, RedisCluster):
        return [wanted]
    await redis.initialize()
    groups: dict[str, list[int]] = {}
    for p in wanted:
        try:
            node = redis.get_node_from_key(keys.tag(p))
        except SlotNotCoveredError:
            node = None
        name = node.name if node is not None else ""  # uncovered: fails apart from the others
        groups.setdefault(name, []).append(p)
    return list(groups.values())
