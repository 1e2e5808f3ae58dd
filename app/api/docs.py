"""/docs (Swagger UI) and /redoc (ReDoc) with their assets served by the service itself.

FastAPI's own pages load Swagger UI, ReDoc, a favicon and Google Fonts from CDNs, so they are
blank offline, air-gapped or under a strict Content-Security-Policy. The assets here come from
the `fastapi-offline` wheel (MIT; it vendors swagger-ui-dist 5 and redoc 2's standalone
bundle), served under /docs/assets/, and the pages are FastAPI's documented
get_swagger_ui_html / get_redoc_html with those URLs.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

from app.api import board

ASSETS_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
ASSETS_PATH = "/docs/assets"


def install(app: FastAPI) -> None:
    title = app.title

    def urls(request: Request) -> tuple[str, str]:
        root = request.scope.get("root_path", "").rstrip("/")
        return f"{root}{app.openapi_url}", f"{root}{ASSETS_PATH}"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        openapi, assets = urls(request)
        return get_swagger_ui_html(
            openapi_url=openapi,
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        openapi, assets = urls(request)
        return get_redoc_html(
            openapi_url=openapi,
            title=f"{title} - ReDoc",
            redoc_js_url=f"{assets}/redoc.standalone.js",
            redoc_favicon_url=f"{assets}/favicon.png",
            with_google_fonts=False,
        )

    board.mount_files(app, ASSETS_PATH, ASSETS_DIR, "docs-assets")
