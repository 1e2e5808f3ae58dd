"""Helpers of the future-supply tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx


def days(n: float) -> str:
    """An RFC 3339 instant `n` days from now (the machine's clock is the store's here)."""
    return (datetime.now(UTC) + timedelta(days=n)).isoformat().replace("+00:00", "Z")


async def put_supply(
    client: httpx.AsyncClient,
    sku: str,
    location: str,
    supply_id: str,
    quantity: int,
    eta: str | None = None,
    type_: str = "purchase_order",
    **extra: Any,
) -> httpx.Response:
    body: dict[str, Any] = {"type": type_, "quantity": quantity, **extra}
    if eta is not None:
        body["eta"] = eta
    return await client.put(f"/v1/supply/{sku}/{location}/{supply_id}", json=body)


async def ok_supply(
    client: httpx.AsyncClient, sku: str, location: str, supply_id: str, quantity: int, eta: str
) -> dict[str, Any]:
    r = await put_supply(client, sku, location, supply_id, quantity, eta)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def backorder(
    client: httpx.AsyncClient, lines: list[dict[str, Any]], **extra: Any
) -> httpx.Response:
    return await client.post(
        "/v1/holds", json={"channel": "web", "allow_backorder": True, "lines": lines, **extra}
    )


async def supply_lines(client: httpx.AsyncClient, sku: str) -> list[dict[str, Any]]:
    r = await client.get(f"/v1/supply/{sku}")
    assert r.status_code == 200, r.text
    lines: list[dict[str, Any]] = r.json()["lines"]
    return lines
