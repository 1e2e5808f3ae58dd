"""/docs and /redoc work offline: every asset they load is served by the service itself."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_load_only_same_origin_assets_that_are_served(
    client: httpx.AsyncClient, page: str
) -> None:
    r = await client.get(page)
    assert r.status_code == 200
    html = r.text
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    urls += re.findall(r"""url: ?["']([^"']+)["']""", html)  # Swagger UI's openapi url
    urls += re.findall(r"""spec-url=["']([^"']+)["']""", html)  # ReDoc's
    assert urls, html
    assert not re.search(r"https?://(?!omnistock)", html), "an absolute URL to elsewhere"
    for url in urls:
        absolute = urljoin(str(r.url), url)
        assert urlsplit(absolute).netloc == "omnistock", url
        asset = await client.get(absolute)
        assert asset.status_code == 200, url
        kind = next((t for ext, t in CONTENT_TYPES.items() if url.endswith(ext)), "json")
        assert kind in asset.headers["content-type"], (url, asset.headers["content-type"])
        assert len(asset.content) > 100, url
