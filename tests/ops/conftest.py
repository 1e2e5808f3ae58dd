"""What the tests of the OpenAPI document share: the document, and its operations."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture
async def spec(client: httpx.AsyncClient) -> dict[str, Any]:
    """The service's /openapi.json."""
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    doc: dict[str, Any] = r.json()
    return doc


def operations(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """("METHOD /path", operation) of every operation in the document."""
    return [
        (f"{method.upper()} {path}", op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]
