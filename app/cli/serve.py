"""`omnistock serve`: the HTTP service, on its own embedded store unless given one."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile

from app.settings import Settings

log = logging.getLogger("omnistock")


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.store.embedded import EmbeddedStore, EmbeddedStoreError

    overrides = {
        k: v
        for k, v in {"host": args.host, "port": args.port, "workers": args.workers}.items()
        if v is not None
    }
    settings = Settings(**overrides)
    store: EmbeddedStore | None = None
    metrics_dir: str | None = None
    if not settings.redis_url:
        try:
            store = EmbeddedStore(settings.data_dir)
            store.start()
        except EmbeddedStoreError as exc:
            print(f"omnistock: {exc}", file=sys.stderr)
            return 2
        # Workers are separate processes: they learn the store's address from the environment.
        os.environ["OMNISTOCK_REDIS_URL"] = store.url
        print(
            f"omnistock: embedded store (pid {store.pid}) on 127.0.0.1:{store.port}, "
            f"append-only file in {settings.data_dir.resolve()}",
            file=sys.stderr,
        )
    for name, value in overrides.items():
        os.environ[f"OMNISTOCK_{name.upper()}"] = str(value)
    if settings.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        metrics_dir = tempfile.mkdtemp(prefix="omnistock-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    print(
        f"omnistock: serving on http://{settings.host}:{settings.port} "
        f"with {settings.workers} worker(s)",
        file=sys.stderr,
    )
    try:
        uvicorn.run(
            "app.api.main:create_app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=args.log_level,
            access_log=False,
            timeout_graceful_shutdown=10,
        )
    finally:
        if store is not None:
            store.stop()
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p_serve = sub.add_parser(
        "serve",
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
    p_serve.set_defaults(func=serve)
