"""/docs (Swagger UI) and /redoc (ReDoc) with their assets served by the service itself.

FastAPI's own pages load Swagger UI, ReDoc, a favicon and Google Fonts from CDNs, so they are
blank offline, air-gapped or under a strict Content-Security-Policy. The assets here come from
the `fastapi-offline` wheel (MIT; it vendors swagger-ui-dist 5 and redoc 2's standalone
bundle), served under /docs/assets/, and the pages are FastAPI's documented
get_swagger_ui_html / get_redoc_html with those URLs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

from app.api import board

ASSETS_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
ASSETS_PATH = "/docs/assets"


# Each page: FastAPI's function for it, its title, and its asset files under /docs/assets/.
PAGES: dict[str, tuple[Callable[..., HTMLResponse], str, dict[str, str]]] = {
    "/docs": (
        get_swagger_ui_html,
        "Swagger UI",
        {
            "swagger_js_url": "swagger-ui-bundle.js",
            "swagger_css_url": "swagger-ui.css",
            "swagger_favicon_url": "favicon.png",
        },
    ),
    "/redoc": (
        partial(get_redoc_html, with_google_fonts=False),
        "ReDoc",
        {"redoc_js_url": "redoc.standalone.js", "redoc_favicon_url": "favicon.png"},
    ),
}


def install(app: FastAPI) -> None:
    def endpoint(
        render: Callable[..., HTMLResponse], name: str, assets: dict[str, str]
    ) -> Callable[[Request], Awaitable[HTMLResponse]]:
        async def page(request: Request) -> HTMLResponse:
            root = request.scope.get("root_path", "").rstrip("/")  # URLs below the app's root
            return render(
                openapi_url=f"{root}{app.openapi_url}",
                title=f"{app.title} - {name}",
                **{key: f"{root}{ASSETS_PATH}/{file}" for key, file in assets.items()},
            )

        return page

    for path, (render, name, assets) in PAGES.items():
        app.add_api_route(path, endpoint(render, name, assets), include_in_schema=False)
    board.mount_files(app, ASSETS_PATH, ASSETS_DIR, "docs-assets")
