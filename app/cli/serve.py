"""`omnistock serve`: the HTTP service, on its own embedded store unless given one."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import shutil
import sys
import tempfile

from app.cli.common import add_action
from app.logs import configure, logging_config
from app.settings import Settings, SettingsError, load_settings

KEEP_ALIVE_SECONDS = 75

log = logging.getLogger("omnistock")


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.server import supervision
    from app.server.writes import CoalescingProtocol
    from app.store.durable import configuration_error
    from app.store.embedded import EmbeddedStore, EmbeddedStoreError

    overrides = {
        k: v
        for k, v in {
            "host": args.host,
            "port": args.port,
            "workers": args.workers,
            "log_format": args.log_format,
        }.items()
        if v is not None
    }
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        print(f"omnistock serve: {exc}", file=sys.stderr)
        return 2
    configure(settings.log_format, args.log_level)
    refused = check_protected_mode(settings)
    if refused is not None:
        return refused
    wait_error = configuration_error(settings)
    if wait_error is not None:
        log.error("omnistock: %s", wait_error)
        return 2
    store: EmbeddedStore | None = None
    metrics_dir: str | None = None
    if not settings.redis_url:
        try:
            store = EmbeddedStore(settings.data_dir)
            store.start()
        except EmbeddedStoreError as exc:
            log.error("omnistock: %s", exc)
            return 2
        # Workers are separate processes: they learn the store's address from the environment.
        os.environ["OMNISTOCK_REDIS_URL"] = store.url
        log.info(
            "omnistock: embedded store (pid %s) on 127.0.0.1:%d, append-only file in %s",
            store.pid,
            store.port,
            settings.data_dir.resolve(),
        )
    for name, value in overrides.items():
        os.environ[f"OMNISTOCK_{name.upper()}"] = str(value)
    if settings.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        metrics_dir = tempfile.mkdtemp(prefix="omnistock-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    log.info(
        "omnistock: serving on http://%s:%d with %d worker(s)",
        settings.host,
        settings.port,
        settings.workers,
    )
    try:
        config = uvicorn.Config(
            "app.server.supervision:create_worker_app",
            factory=True,
            http=CoalescingProtocol,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=args.log_level,
            log_config=logging_config(settings.log_format, args.log_level),
            access_log=False,
            timeout_graceful_shutdown=10,
            # Idle keep-alive connections stay open longer than any client or load balancer
            # keeps them (httpx 5 s, nginx 75 s... ALB 60 s): uvicorn's 5 s default closes a
            # connection just as a client reuses it, and that request is lost (ReadError, or
            # a 502 from a balancer). Silent new connections are still cut at the header
            # timeout (app/server/timeouts.py).
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
        )
        supervision.run(config, settings.api_keys_file)
    finally:
        if store is not None:
            store.stop()
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or `localhost`. Other names are not resolved: not loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_protected_mode(settings: Settings) -> int | None:
    """API keys decide where the service may listen. Without a keys file it serves without
    authentication ("protected mode"), so only on loopback; it refuses any other address
    (exit 2). A keys file that cannot be read stops the start too: never fall back to open."""
    from app.credentials import KeysFileError, load

    if settings.api_keys_file is None:
        if not is_loopback(settings.host):
            log.error(
                "omnistock: refusing to serve on %s without API keys: anyone who can reach "
                "it could read and change stock. Set OMNISTOCK_API_KEYS_FILE (create keys with "
                "`omnistock keys new`), or serve on 127.0.0.1",
                settings.host,
            )
            return 2
        log.warning(
            "omnistock: protected mode: no API keys (OMNISTOCK_API_KEYS_FILE unset), so no "
            "authentication and serving on the loopback address %s only",
            settings.host,
        )
        return None
    try:
        count = len(load(settings.api_keys_file))
    except KeysFileError as exc:
        log.error("omnistock: %s", exc)
        return 2
    log.info("omnistock: %d API key(s) from %s", count, settings.api_keys_file)
    return None


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p_serve = add_action(
        sub,
        "serve",
        serve,
        help="run the HTTP service",
        description="Run the HTTP service. Without OMNISTOCK_REDIS_URL it starts and supervises "
        "a private store with append-only persistence under OMNISTOCK_DATA_DIR (./data).",
    )
    p_serve.add_argument("--host", help="bind address (OMNISTOCK_HOST, default 127.0.0.1)")
    p_serve.add_argument("--port", type=int, help="port (OMNISTOCK_PORT, default 8080)")
    p_serve.add_argument("--workers", type=int, help="worker processes (OMNISTOCK_WORKERS, 1)")
    p_serve.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    p_serve.add_argument(
        "--log-format",
        choices=["json", "text"],
        help="one JSON object per line, or plain text (OMNISTOCK_LOG_FORMAT, default json)",
    )
