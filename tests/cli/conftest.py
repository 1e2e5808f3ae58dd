"""A real HTTP service for the CLI's service commands: uvicorn serving `create_app` in a
thread, on the suite's store (flushed per test), and the `omnistock` CLI run in-process."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from app.api.main import create_app
from app.cli import main
from app.store.embedded import free_port
from tests.conftest import make_settings


@pytest.fixture
def serve_app(store_url: str) -> Iterator[Any]:
    """serve(**settings) -> base URL of a running server; stopped after the test."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def serve(**overrides: Any) -> str:
        app = create_app(make_settings(store_url, **overrides))
        port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return f"http://127.0.0.1:{port}"

    yield serve
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def live_url(serve_app: Any) -> str:
    url: str = serve_app()
    return url


@pytest.fixture
def api(live_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_url, timeout=5) as client:
        yield client


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Any:
    """cli(*args) -> Result: `omnistock ARGS` in this process, with its exit code."""

    def run(*args: str | Path) -> Result:
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse: --help (0) and usage errors (2)
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def seed(api: httpx.Client, stock: dict[tuple[str, str], int] | None = None) -> None:
    """dc-north (a DC) and store-12 (a store), channel `web` over both, and positions."""
    api.put("/v1/locations/dc-north", json={"type": "dc", "ship": True, "priority": 1})
    api.put("/v1/locations/store-12", json={"type": "store", "pickup": True, "priority": 10})
    api.put("/v1/channels/web", json={"locations": ["dc-north", "store-12"]}).raise_for_status()
    for (sku, loc), on_hand in (stock or {}).items():
        api.put(f"/v1/stock/{sku}/{loc}", json={"on_hand": on_hand}).raise_for_status()
