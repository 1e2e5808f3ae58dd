"""The board's static files are served by the service, without an API key and outside the
OpenAPI document (the browser tests in test_board_browser.py check what they do)."""

from __future__ import annotations

import httpx
import pytest

FILES = ["board.js", "sse.js", "nearby.js", "board.css", "widget.js", "widget-example.html"]


async def test_board_redirects_to_its_index_page(client: httpx.AsyncClient) -> None:
    r = await client.get("/board", follow_redirects=True)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "live stock board" in r.text


@pytest.mark.parametrize("name", FILES)
async def test_board_file_is_served(client: httpx.AsyncClient, name: str) -> None:
    r = await client.get(f"/board/{name}")
    assert r.status_code == 200
    assert len(r.content) > 100


async def test_unknown_board_file_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/board/nope.js")).status_code == 404


async def test_board_requests_are_counted_under_the_board_route(
    client: httpx.AsyncClient,
) -> None:
    await client.get("/board/board.js")
    text = (await client.get("/metrics")).text
    assert 'route="/board"' in text


async def test_board_is_not_an_api_operation(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [p for p in paths if p.startswith("/board")]
