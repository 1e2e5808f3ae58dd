"""The live stock board (/board/) and the embeddable widget example, as static files.

Plain HTML/JS/CSS in app/board/ (shipped in the wheel as package data): no build step. The
pages carry no stock data themselves; their scripts read it from the API like any client.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

BOARD_DIR = Path(__file__).resolve().parent.parent / "board"


class _Files(StaticFiles):
    """StaticFiles that tells the metrics and request log which route served the request."""

    def __init__(self, directory: Path, html: bool) -> None:
        super().__init__(directory=directory, html=html)
        self.mount: Mount | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self.mount
        await super().__call__(scope, receive, send)


def mount_files(app: FastAPI, path: str, directory: Path, name: str, html: bool = False) -> None:
    """Serve the files of `directory` under `path`."""
    files = _Files(directory, html)
    files.mount = Mount(path, app=files, name=name)
    app.router.routes.append(files.mount)


def install(app: FastAPI, path: str = "/board") -> None:
    mount_files(app, path, BOARD_DIR, "board", html=True)
