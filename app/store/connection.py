"""Connections to the store, with bounded timeouts and no blind retries.

A retried EVALSHA may run a script twice (the first attempt can succeed and only the reply be
lost), so the client never retries on its own: the request fails with 503 and the caller
retries with its Idempotency-Key, which is safe.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from app.settings import Settings


def connect(settings: Settings, url: str | None = None) -> Redis:
    url = url or settings.redis_url
    if not url:
        raise ValueError("no store URL: set OMNISTOCK_REDIS_URL or run `omnistock serve`")
    timeout = settings.redis_timeout_seconds
    if settings.redis_cluster:
        cluster = RedisCluster.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        return cluster  # type: ignore[return-value]  # same command surface for our use
    # Blocking pool: a burst beyond max_connections waits (up to the timeout) for a free
    # connection instead of failing, and never opens unbounded connections.
    pool = BlockingConnectionPool.from_url(
        url,
        decode_responses=True,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=5,
        retry=Retry(NoBackoff(), 0),
        max_connections=settings.redis_max_connections,
        timeout=timeout,
    )
    return Redis.from_pool(pool)
