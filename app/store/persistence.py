"""Why the store refuses writes, in words a client can act on.

A store that cannot persist refuses writes and serves reads: an external server whose AOF
write failed answers MISCONF (and takes writes again by itself once a write succeeds); the
embedded store, whose supervisor saw its disk fill up (app/store/embedded.py), answers
NOREPLICAS. Requests turn either into 503 `store_unavailable` with `refusal_detail`;
/readyz reads the same state from INFO (`write_refusal`).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoPermissionError, OutOfMemoryError, ReadOnlyError, ResponseError

from app.store.embedded import DISK_FULL

_TOO_FEW_REPLICAS = (
    "the store refuses writes: too few replicas are in sync (its min-replicas-to-write)"
)


def refusal_detail(exc: ResponseError, embedded: bool) -> str | None:
    """The cause, when `exc` is the store refusing a write it could take later; else None
    (a bug: the caller answers 500). `embedded`: the store is the one `omnistock serve` runs."""
    message = str(exc)
    if message.startswith("MISCONF "):
        # "Errors writing to the AOF file: No space left on device", or RDB's long sentence.
        cause = message[len("MISCONF ") :].split(" script: ")[0].split(". ")[0].rstrip(".")
        return f"the store cannot write to disk ({cause}); writes are refused until it can"
    if message.startswith("NOREPLICAS "):
        return DISK_FULL if embedded else _TOO_FEW_REPLICAS
    if isinstance(exc, ReadOnlyError):
        return "the store is a read-only replica (a failover?); writes are refused"
    if isinstance(exc, OutOfMemoryError):
        return "the store is out of memory (its maxmemory); writes are refused"
    return None


async def write_refusal(redis: Redis, embedded: bool) -> str | None:
    """Why the store refuses writes right now (None: it takes them, or a store user without
    INFO may not ask), from its INFO."""
    try:
        info: dict[str, Any] = await redis.info("persistence", "replication")
    except NoPermissionError:
        return None
    # A cluster client answers per node ({"host:port": {...}}): any node refusing counts.
    nodes = (
        list(info.values()) if info and all(isinstance(v, dict) for v in info.values()) else [info]
    )
    for node in nodes:
        if node.get("aof_enabled") and node.get("aof_last_write_status") == "err":
            return "the store cannot write to disk (its append-only file); writes are refused"
        if node.get("min_slaves_good_slaves", 1) == 0:
            return DISK_FULL if embedded else _TOO_FEW_REPLICAS
    return None
