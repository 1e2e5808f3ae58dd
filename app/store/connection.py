"""Connections to the store, with bounded timeouts and no blind retries.

A retried FCALL may run a script twice (the first attempt can succeed and only the reply be
lost), so the client never retries on its own: the request fails with 503 and the caller
retries with its Idempotency-Key, which is safe.

On a cluster (OMNISTOCK_REDIS_CLUSTER=1) the URL may name several seed nodes, comma-separated,
and the client is app/store/cluster.py's: the same bounds, no re-sends either.

Credentials come in the URL (`redis://user:password@host:6379/0`, an ACL user; percent-encode
special characters of the password). `rediss://` is TLS: the server's certificate is checked
against OMNISTOCK_REDIS_CA_FILE (the system's CAs without it) and its host name, and
OMNISTOCK_REDIS_CERT_FILE / OMNISTOCK_REDIS_KEY_FILE are sent when the server wants a client
certificate.
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from app.settings import Settings
from app.store.cluster import cluster_client
from app.store.mux import Multiplexer


def tls_options(settings: Settings, url: str) -> dict[str, Any]:
    """redis-py's ssl_* arguments for a `rediss://` URL. TLS files with a plain `redis://`
    URL are a configuration mistake (the traffic would silently go unencrypted): refused."""
    files = {
        "ssl_ca_certs": settings.redis_ca_file,
        "ssl_certfile": settings.redis_cert_file,
        "ssl_keyfile": settings.redis_key_file,
    }
    if not url.startswith("rediss://"):
        if any(files.values()):
            raise ValueError(
                "OMNISTOCK_REDIS_CA_FILE/CERT_FILE/KEY_FILE are set but OMNISTOCK_REDIS_URL "
                "is not rediss://"
            )
        return {}
    options: dict[str, Any] = {"ssl_cert_reqs": "required", "ssl_check_hostname": True}
    options.update({name: str(path) for name, path in files.items() if path is not None})
    return options


def connect(settings: Settings, url: str | None = None) -> Redis:
    url = url or settings.redis_url
    if not url:
        raise ValueError("no store URL: set OMNISTOCK_REDIS_URL or run `omnistock serve`")
    timeout = settings.redis_timeout_seconds
    tls = tls_options(settings, url)
    if settings.redis_cluster:
        # The same bounds as one server's pool; calls past max_connections wait (cluster.py).
        cluster = cluster_client(
            url,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=5,
            max_connections=settings.redis_max_connections,
            **tls,
        )
        return cluster  # type: ignore[return-value]  # same command surface for our use
    if "," in url:
        raise ValueError("several OMNISTOCK_REDIS_URL nodes need OMNISTOCK_REDIS_CLUSTER=1")
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
        **tls,
    )
    return Redis.from_pool(pool)


def node_client(settings: Settings, host: str, port: int) -> Redis:
    """A client of one cluster node, as `connect` makes for one server: the first seed URL's
    credentials, TLS and limits with that node's address. The event reader needs it to
    pipeline TIME with stream reads on a node, which the cluster client does not route."""
    seed = urlsplit((settings.redis_url or "").split(",")[0].strip())
    userinfo = seed.netloc.rpartition("@")[0]
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    netloc = f"{userinfo}@{address}" if userinfo else address
    url = urlunsplit((seed.scheme, netloc, seed.path, seed.query, seed.fragment))
    return connect(settings.model_copy(update={"redis_cluster": False}), url)


def multiplexer(settings: Settings, url: str | None = None) -> Multiplexer | None:
    """The hot path's shared pipelined connection (app/store/mux.py) to a standalone server;
    None for a cluster (redis-py's cluster client routes by slot) or a unix socket URL."""
    url = url or settings.redis_url
    if not url or settings.redis_cluster or not url.startswith(("redis://", "rediss://")):
        return None
    context = None
    if url.startswith("rediss://"):
        options = tls_options(settings, url)
        context = ssl.create_default_context(cafile=options.get("ssl_ca_certs"))
        if "ssl_certfile" in options:
            context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"))
    return Multiplexer.from_url(url, settings.redis_timeout_seconds, context)
