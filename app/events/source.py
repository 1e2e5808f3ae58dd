"""Every store command of the read side, so the rest never builds a Redis call.

Standalone server: a round is one pipeline (TIME, then a read of the partitions' streams).
On a cluster (OMNISTOCK_REDIS_CLUSTER=1) the single 256-key XREAD of `tail`/`wait` is
CROSSSLOT: a cluster source would group the partitions by node and pipeline one read per node,
and since every node stamps ids with its own clock it would deliver only below the smallest of
the nodes' TIMEs. Only this class would change; `log` and `hub` take any object with these
methods.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from app import keys

Entry = tuple[str, dict[str, str]]  # (stream id, fields)
Batch = dict[int, list[Entry]]  # partition -> entries, oldest first


class StreamSource:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._partition_of_key = {keys.events(p): p for p in range(keys.PARTITIONS)}

    async def time_ms(self) -> int:
        return _ms(await self._redis.time())

    async def ranges(
        self, starts: dict[int, str], count: int, with_time: bool
    ) -> tuple[int | None, Batch]:
        """XRANGE of each partition from its (inclusive) start id, up to `count` entries;
        with `with_time`, the store's TIME taken first in the same pipeline."""
        async with self._redis.pipeline(transaction=False) as pipe:
            if with_time:
                pipe.time()
            for p, start in starts.items():
                pipe.xrange(keys.events(p), min=start, max="+", count=count)
            replies = await pipe.execute()
        t0 = _ms(replies.pop(0)) if with_time else None
        return t0, dict(zip(starts, replies, strict=True))

    async def tail(self, after: dict[int, str], count: int) -> tuple[int, Batch]:
        """TIME, then everything after each partition's id (exclusive), without blocking."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.time()
            pipe.xread(self._streams(after), count=count)
            t0, reply = await pipe.execute()
        return _ms(t0), self._batch(reply)

    async def wait(self, after: dict[int, str], count: int, block_ms: int) -> Batch:
        """Block until some partition has an entry after its id (or `block_ms` passes)."""
        reply = await self._redis.xread(self._streams(after), count=count, block=block_ms)
        return self._batch(reply)

    async def stream_info(self, partitions: list[int]) -> dict[int, dict[str, Any]]:
        """XINFO STREAM of each partition that has a stream."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for p in partitions:
                pipe.xinfo_stream(keys.events(p))
            replies = await pipe.execute(raise_on_error=False)
        out: dict[int, dict[str, Any]] = {}
        for p, reply in zip(partitions, replies, strict=True):
            if isinstance(reply, ResponseError):
                continue  # no such key: the partition never had an event
            if isinstance(reply, Exception):
                raise reply
            out[p] = reply
        return out

    @staticmethod
    def _streams(after: dict[int, str]) -> dict[Any, Any]:
        return {keys.events(p): last for p, last in after.items()}

    def _batch(self, reply: Any) -> Batch:
        if not reply:
            return {}
        out: Batch = {}
        if isinstance(reply, dict):  # RESP3: {key: [entries]}, or {key: entries} (unified)
            pairs = [(k, v[0] if v and isinstance(v[0], list) else v) for k, v in reply.items()]
        else:  # RESP2: [[key, entries], ...]
            pairs = [(k, v) for k, v in reply]
        for key, entries in pairs:
            if entries:
                out[self._partition_of_key[key]] = list(entries)
        return out


def _ms(time_reply: tuple[int, int]) -> int:
    seconds, micros = time_reply
    return int(seconds) * 1000 + int(micros) // 1000
