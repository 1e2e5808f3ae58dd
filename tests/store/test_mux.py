"""The multiplexed store connection (app/store/mux.py) on a real server: every caller gets its
own reply under concurrency and cancellation, errors arrive as redis-py's exception types, a
silent or vanished server fails the waiting calls within the timeout, and the next call
connects again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import (
    AuthenticationError,
    ConnectionError,
    NoScriptError,
    ResponseError,
    TimeoutError,
)

from app.store.embedded import EmbeddedStore
from app.store.mux import Multiplexer, pack
from app.store.scripts import Scripts


@pytest.fixture
async def mux(store_url: str) -> AsyncIterator[Multiplexer]:
    m = Multiplexer.from_url(store_url, timeout=2.0)
    yield m
    await m.aclose()


def test_arguments_are_encoded_as_redis_py_encodes_them() -> None:
    assert pack(["SET", "k", 12, 1.5, b"\x00"]) == (
        b"*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n$3\r\n1.5\r\n$1\r\n\x00\r\n"
    )
    with pytest.raises(TypeError):
        pack(["SET", "k", True])


async def test_concurrent_callers_each_get_their_own_reply(mux: Multiplexer) -> None:
    replies = await asyncio.gather(*(mux.execute("ECHO", f"value-{i}") for i in range(2000)))
    assert replies == [f"value-{i}" for i in range(2000)]


async def test_a_cancelled_call_leaves_the_connection_in_step(mux: Multiplexer) -> None:
    await mux.execute("PING")  # connected
    for i in range(50):
        doomed = asyncio.ensure_future(mux.execute("ECHO", f"doomed-{i}"))
        await asyncio.sleep(0)  # sent, reply not read yet
        doomed.cancel()
        assert await mux.execute("ECHO", f"kept-{i}") == f"kept-{i}"


async def test_an_error_reply_raises_redis_py_exception_types(mux: Multiplexer) -> None:
    with pytest.raises(NoScriptError):
        await mux.execute("EVALSHA", "0" * 40, 0)
    with pytest.raises(ResponseError, match="wrong number of arguments"):
        await mux.execute("GET")
    assert await mux.execute("PING") == "PONG"  # and the connection carries on


async def test_a_transaction_returns_every_reply_in_order(mux: Multiplexer, redis: Redis) -> None:
    await redis.set("mux:t", "x")
    replies = await mux.transaction([("GET", "mux:t"), ("INCR", "mux:t"), ("ECHO", "y")])
    assert replies[0] == "x" and isinstance(replies[1], ResponseError) and replies[2] == "y"


async def test_a_script_runs_after_the_stores_functions_are_flushed(
    mux: Multiplexer, redis: Redis
) -> None:
    scripts = Scripts.register(redis, mux=mux)
    await redis.function_flush()
    reply = await scripts.availability(keys=["os:{001}:pos:X", "os:{001}:hx:X"], args=[0])
    assert reply == [[]]


async def test_a_wrong_password_fails_the_call_instead_of_hanging(
    store_server: EmbeddedStore,
) -> None:
    m = Multiplexer("127.0.0.1", store_server.port, password="not-it", timeout=2.0)
    with pytest.raises((AuthenticationError, ResponseError)):
        await m.execute("PING")
    await m.aclose()


async def test_a_paused_store_fails_waiting_calls_within_the_timeout(
    store_url: str, redis: Redis
) -> None:
    m = Multiplexer.from_url(store_url, timeout=0.5)
    await m.execute("PING")
    await redis.execute_command("CLIENT", "PAUSE", 3000, "ALL")
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await m.execute("GET", "mux:paused")
        assert time.monotonic() - started < 2.0
    finally:
        await redis.execute_command("CLIENT", "UNPAUSE")
    assert await m.execute("PING") == "PONG"  # a fresh connection
    await m.aclose()


async def test_calls_fail_while_the_store_is_gone_and_work_once_it_is_back(
    tmp_path: Path,
) -> None:
    store = EmbeddedStore(tmp_path, supervise=False)
    store.start()
    m = Multiplexer.from_url(store.url, timeout=1.0)
    try:
        await m.execute("SET", "k", "v")
        store.stop()
        with pytest.raises(ConnectionError):
            await m.execute("GET", "k")
        store.start()
        assert await m.execute("GET", "k") == "v"  # the store's AOF kept it
    finally:
        await m.aclose()
        store.stop()
