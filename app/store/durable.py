"""Write, then wait for replicas: `OMNISTOCK_WAIT_REPLICAS=N` and `OMNISTOCK_WAIT_AOF=1`.

A change is acknowledged only once N replicas hold it (WAIT), or once it is fsynced to the
primary's append-only file and N replicas' (WAITAOF 1 N). Both wait for the replication
offset of the *calling connection's own* last write: on another connection, or after a
script that wrote nothing (a retry that only replays its first attempt), they answer at once
and prove nothing (measured: WAIT 1 on a fresh connection returns 1 with the replica
stopped). So every waited change is sent on ONE connection as

    FCALL <function> ... ; SET <mark> 1 ; WAIT N <timeout>

The mark (`app/keys.py`, one per partition) is a write that always replicates, so the WAIT
covers everything the server applied before it: the script's change, or the first attempt's
change a retry replays.

On a standalone server the waited writes have their own multiplexed connection (reads never
queue behind a WAIT, which blocks its connection on the server) and are group-committed:
the writes that arrive while a WAIT is outstanding are held and leave together when it
answers, followed by one mark and one WAIT for all of them. On a cluster each write takes a
connection of its slot's primary for the three commands (`PooledWriter`).

Fewer than N copies within the request's remaining time (less a margin to answer) raises
`ReplicasDidNotAcknowledge`: a 503 whose change may or may not survive a failover, so the
caller retries with its Idempotency-Key, and the retry waits again.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from redis import Redis as SyncRedis
from redis import exceptions as rx
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from app import keys
from app.settings import Settings
from app.store.connection import multiplexer, tls_options
from app.store.mux import Arg, Multiplexer, pack

# The loop time by which the current request must have answered (set by the API's deadline
# middleware; None outside a request: the store timeout alone bounds the wait).
answer_by: contextvars.ContextVar[float | None] = contextvars.ContextVar("answer_by", default=None)

MARGIN_SECONDS = 0.1  # left after a failed wait to release the claim and answer 503
_TAG = re.compile(r"\{(\d{3})\}")


class ReplicasDidNotAcknowledge(rx.TimeoutError):
    """Too few copies in time: the outcome is unknown (the change may survive a failover or
    not). A TimeoutError, so every caller already treats it as "retry with the same key"."""


@dataclass(frozen=True)
class WaitPolicy:
    replicas: int
    aof: bool = False

    @property
    def active(self) -> bool:
        return self.replicas > 0 or self.aof

    def command(self, timeout_ms: int) -> tuple[Arg, ...]:
        if self.aof:
            return ("WAITAOF", 1, self.replicas, timeout_ms)
        return ("WAIT", self.replicas, timeout_ms)

    def check(self, reply: Any, timeout_ms: int) -> None:
        """Raise ReplicasDidNotAcknowledge unless `reply` (of `command`) shows enough copies."""
        if isinstance(reply, Exception):  # e.g. WAITAOF with appendonly off: never a 500
            raise ReplicasDidNotAcknowledge(f"the store could not wait for replicas: {reply}")
        if self.aof:
            local, replicas = int(reply[0]), int(reply[1])
            if local >= 1 and replicas >= self.replicas:
                return
            raise ReplicasDidNotAcknowledge(
                f"the change was not fsynced to the append-only file of the store and "
                f"{self.replicas} replica(s) within {timeout_ms} ms (store: {local}, "
                f"replicas: {replicas})"
            )
        if int(reply) >= self.replicas:
            return
        raise ReplicasDidNotAcknowledge(
            f"{self.replicas} replica(s) did not acknowledge the change within {timeout_ms} ms "
            f"({int(reply)} did)"
        )


def mark_key(command: Sequence[Arg]) -> str:
    """The mark in the partition of an `FCALL function numkeys key...` (or EVALSHA) command's
    first key (the same slot, so the same primary), or the configuration's slot for `os:{cfg}`
    scripts."""
    first = command[3] if len(command) > 3 and int(command[2]) > 0 else b""
    text = first.decode() if isinstance(first, bytes) else str(first)
    match = _TAG.match(text, len(keys.PREFIX) + 1)
    return keys.replication_mark(int(match.group(1)) if match else None)


def wait_timeout_ms(store_timeout: float, deadlines: Sequence[float | None]) -> int:
    """What the request(s) can still spend waiting: their earliest deadline, and the store
    timeout (the multiplexer drops a connection whose oldest command waited that long), less
    a margin; at least 1 ms (WAIT 0 would block for ever)."""
    now = asyncio.get_running_loop().time()
    budget = min([store_timeout] + [d - now for d in deadlines if d is not None])
    return max(1, int((budget - MARGIN_SECONDS) * 1000))


class Writer(Protocol):
    async def write(self, command: Sequence[Arg]) -> Any:
        """Send `command` (an FCALL), then wait; its reply once the policy is met."""

    async def aclose(self) -> None: ...


def writer_for(settings: Settings, redis: Redis) -> Writer | None:
    """The writer for the configured policy: None without one (nothing waits, no WAIT is
    sent); group commit on a connection of its own to a standalone server; per-call pipelines
    on pooled connections to a cluster's primaries (or a unix socket)."""
    policy = WaitPolicy(settings.wait_replicas, settings.wait_aof)
    if not policy.active:
        return None
    mux = multiplexer(settings)
    if mux is not None:
        return GroupCommitWriter(mux, policy, settings.redis_timeout_seconds)
    return PooledWriter(redis, policy, settings.redis_timeout_seconds)


@dataclass
class _Member:
    command: Sequence[Arg]
    deadline: float | None
    reply: asyncio.Future[Any]


@dataclass
class _Batch:
    members: list[_Member] = field(default_factory=list)


class GroupCommitWriter:
    """Waited writes on their own multiplexed connection, one mark + WAIT per batch."""

    def __init__(self, mux: Multiplexer, policy: WaitPolicy, store_timeout: float) -> None:
        self._mux = mux
        self._policy = policy
        self._timeout = store_timeout
        self._open: _Batch | None = None  # collecting; leaves when nothing is outstanding
        self._outstanding = False
        self._sending: asyncio.Future[None] | None = None

    async def write(self, command: Sequence[Arg]) -> Any:
        loop = asyncio.get_running_loop()
        member = _Member(command, answer_by.get(), loop.create_future())
        if self._open is None:
            self._open = _Batch()
            if not self._outstanding:
                loop.call_soon(self._start)  # everything written in this turn joins
        self._open.members.append(member)
        reply = await member.reply
        if isinstance(reply, Exception):
            raise reply
        return reply

    def _start(self) -> None:
        if self._outstanding or self._open is None:
            return  # (the outstanding batch's end starts the open one)
        batch, self._open = self._open, None
        # A caller cancelled (its deadline) before its batch left: never sent at all.
        batch.members = [m for m in batch.members if not m.reply.done()]
        if not batch.members:
            return
        self._outstanding = True
        self._sending = asyncio.ensure_future(self._send(batch))  # (kept: not collected)

    async def _send(self, batch: _Batch) -> None:
        members = batch.members
        try:
            timeout_ms = wait_timeout_ms(self._timeout, [m.deadline for m in members])
            commands = [m.command for m in members]
            commands += [("SET", mark_key(commands[-1]), 1), self._policy.command(timeout_ms)]
            replies = await self._mux.pipeline(commands)
            _settle(members, replies, self._policy, timeout_ms)
        except BaseException as exc:  # connection lost, timeout: every member's outcome unknown
            for m in members:
                if not m.reply.done():
                    m.reply.set_result(exc if isinstance(exc, Exception) else rx.TimeoutError())
            if not isinstance(exc, Exception):
                raise
        finally:
            self._outstanding = False
            if self._open is not None:
                self._start()

    async def aclose(self) -> None:
        await self._mux.aclose()


def _settle(members: Sequence[_Member], replies: list[Any], policy: WaitPolicy, ms: int) -> None:
    """Each member's reply: its own error if its script failed, else its reply if the mark and
    the wait succeeded, else why not."""
    failure: Exception | None = replies[-2] if isinstance(replies[-2], Exception) else None
    if failure is None:
        try:
            policy.check(replies[-1], ms)
        except ReplicasDidNotAcknowledge as exc:
            failure = exc
    for member, reply in zip(members, replies, strict=False):
        if not member.reply.done():
            member.reply.set_result(reply if isinstance(reply, Exception) else failure or reply)


class PooledWriter:
    """FCALL + mark + WAIT as one pipeline on one pooled redis-py connection: of the slot's
    primary on a cluster (the cluster client would send a bare WAIT to a default node), of
    the server otherwise (a unix-socket URL, which has no multiplexer)."""

    def __init__(self, redis: Redis, policy: WaitPolicy, store_timeout: float) -> None:
        self._redis = redis
        self._policy = policy
        self._timeout = store_timeout

    async def write(self, command: Sequence[Arg]) -> Any:
        timeout_ms = wait_timeout_ms(self._timeout, [answer_by.get()])
        mark = mark_key(command)
        packed = pack(command) + pack(("SET", mark, 1)) + pack(self._policy.command(timeout_ms))
        if isinstance(self._redis, RedisCluster):
            node = self._redis.get_node_from_key(mark)
            if node is None:
                raise rx.ClusterDownError(f"no primary serves the slot of {mark}")
            conn = node.acquire_connection()
            try:
                replies = await _exchange(conn, packed, 3)
            finally:
                node.release(conn)
        else:
            pool = self._redis.connection_pool
            conn = await pool.get_connection()  # type: ignore[no-untyped-call]
            try:
                replies = await _exchange(conn, packed, 3)
            finally:
                await pool.release(conn)
        if isinstance(replies[0], Exception):
            raise replies[0]
        if isinstance(replies[1], Exception):
            raise replies[1]
        self._policy.check(replies[2], timeout_ms)
        return replies[0]

    async def aclose(self) -> None:
        pass  # the connections are the client's, closed with it


async def _exchange(conn: Any, packed: bytes, replies: int) -> list[Any]:
    """Send `packed` on `conn` and read its `replies` (error replies as exception objects)."""
    try:
        await conn.connect()
        await conn.send_packed_command(packed)
        out: list[Any] = []
        for _ in range(replies):
            try:
                out.append(await conn.read_response())
            except rx.ResponseError as exc:  # an error reply; the connection is in step
                out.append(exc)
        return out
    except RuntimeError as exc:
        # uvloop's answer to a write on a transport the peer closed (a killed primary): a
        # connection error like any other (503), not a 500.
        await conn.disconnect()
        raise rx.ConnectionError(f"the store connection is closed: {exc}") from exc
    except BaseException:
        await conn.disconnect()  # a reply left unread would answer the next user
        raise


def configuration_error(settings: Settings) -> str | None:
    """Why the wait settings cannot work, checked by `omnistock serve` before it starts (exit
    2): the embedded store has no replicas; WAITAOF needs a server that has it (Redis 7.2+,
    Valkey 8) and an append-only file on the primary. A store that does not answer yet is not
    checked (the service starts without its store; a refused wait is a 503 then)."""
    policy = WaitPolicy(settings.wait_replicas, settings.wait_aof)
    if not settings.redis_url:
        if policy.replicas > 0:
            return (
                "OMNISTOCK_WAIT_REPLICAS needs a store with replicas (OMNISTOCK_REDIS_URL); "
                "the embedded store has none, so every change would be refused"
            )
        return None
    if not policy.aof:
        return None
    url = settings.redis_url.split(",")[0].strip()  # a cluster's seed nodes: the first
    timeout = settings.redis_timeout_seconds
    client = SyncRedis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, **tls_options(settings, url)
    )
    try:
        try:
            # Asks for nothing, so it answers at once: only whether the server knows it.
            client.execute_command("WAITAOF", 0, 0, 1)  # type: ignore[no-untyped-call]
        except rx.ResponseError as exc:
            return (
                f"OMNISTOCK_WAIT_AOF=1 needs WAITAOF (Redis 7.2+, Valkey 8+): the store says {exc}"
            )
        aof = client.info("persistence").get("aof_enabled")
    except rx.RedisError:
        return None
    finally:
        client.close()
    if not aof:
        return "OMNISTOCK_WAIT_AOF=1 needs the store's append-only file (appendonly yes)"
    return None
