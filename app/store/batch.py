"""Many plain read commands in one MULTI/EXEC, on one pooled connection, packed by hand.

For a many-sku availability read (one standalone server): as atomic as a Lua script, at a
fraction of the store time of one script call per partition, and — unlike redis-py's
pipeline, whose per-command bookkeeping costs about 15 µs of Python a command — at the Python
cost of the script calls it replaces (docs/benchmarks.md, "Tuning"). Only for commands whose
raw RESP2 replies the caller reads itself (no redis-py response callbacks run).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from app.store.mux import Multiplexer
from app.store.mux import pack as pack_command

Command = Sequence[str | int]


def pack(commands: Sequence[Command]) -> bytes:
    return b"".join([pack_command(command) for command in commands])


async def transaction(
    redis: Redis, commands: Sequence[Command], mux: Multiplexer | None = None
) -> list[Any]:
    """The replies of `commands`, run by the server as one MULTI/EXEC: on the multiplexed
    connection when there is one (app/store/mux.py), else on a pooled redis-py connection."""
    if mux is not None:
        replies = await mux.transaction(commands)
        for reply in replies:
            if isinstance(reply, ResponseError):
                raise reply
        return replies
    pool = redis.connection_pool
    conn = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        await conn.send_packed_command(pack([("MULTI",), *commands, ("EXEC",)]))
        for _ in range(len(commands) + 1):
            await conn.read_response()  # +OK, then +QUEUED per command (errors raise here)
        replies = await conn.read_response()
    except BaseException:
        # A reply left unread (timeout, cancellation) would answer the connection's next user.
        await conn.disconnect()
        raise
    finally:
        await pool.release(conn)
    if not isinstance(replies, list) or len(replies) != len(commands):
        raise ResponseError(f"unexpected EXEC reply: {replies!r:.200}")
    for reply in replies:
        if isinstance(reply, ResponseError):
            raise reply
    return replies
