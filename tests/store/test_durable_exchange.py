"""The waited write's exchange on one pooled connection (app/store/durable.py `_exchange`)."""

from __future__ import annotations

from typing import Any

import pytest
from redis import exceptions as rx
from redis.asyncio import Redis

from app.store.durable import _exchange
from app.store.embedded import EmbeddedStore
from app.store.mux import pack


async def test_a_write_on_a_connection_closed_under_it_is_a_connection_error(
    store_server: EmbeddedStore,
) -> None:
    """uvloop raises RuntimeError ('the handler is closed') when a pooled connection's
    transport was closed by a killed primary; seen as a 500 in the cluster failover test. It
    must reach the caller as the store's ConnectionError (a 503), the connection dropped."""
    client = Redis.from_url(store_server.url)
    conn: Any = await client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
    await conn.connect()
    writer: Any = conn._writer

    def closed(_: Any) -> None:
        raise RuntimeError("unable to perform operation on <TCPTransport closed=True>")

    writer.writelines = closed
    with pytest.raises(rx.ConnectionError, match="the store connection is closed"):
        await _exchange(conn, pack(("PING",)), 1)
    assert not conn.is_connected
    await conn.connect()  # usable again: a fresh connection
    assert await _exchange(conn, pack(("PING",)), 1) in (["PONG"], [b"PONG"], [True])
    await client.connection_pool.release(conn)
    await client.aclose()
