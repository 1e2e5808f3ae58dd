"""Small helpers shared by the HTTP contract tests (no fixtures: those live in conftest)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from app.domain import holds as holds_module
from app.keys import partition_of

PROBLEM_FIELDS = ("type", "title", "status", "detail", "code")


def skus_in_one_partition(n: int, prefix: str = "same") -> list[str]:
    """`n` skus that share one partition (one script call reserves them all)."""
    by_partition: dict[int, list[str]] = {}
    i = 0
    while True:
        sku = f"{prefix}-{i}"
        group = by_partition.setdefault(partition_of(sku), [])
        group.append(sku)
        if len(group) == n:
            return group
        i += 1


def skus_in_distinct_partitions(n: int, prefix: str = "apart") -> list[str]:
    """`n` skus, each in a partition of its own (a hold over them is reserved in parts)."""
    seen: set[int] = set()
    out: list[str] = []
    i = 0
    while len(out) < n:
        sku = f"{prefix}-{i}"
        if partition_of(sku) not in seen:
            seen.add(partition_of(sku))
            out.append(sku)
        i += 1
    return out


# The two ways a hold's skus can lie: one atomic script, or reserved in parts.
LAYOUTS = ["one_partition", "distinct_partitions"]


def skus_laid_out(layout: str, n: int, prefix: str) -> list[str]:
    """`n` skus in one partition, or each in its own (`layout`, one of LAYOUTS)."""
    if layout == "one_partition":
        return skus_in_one_partition(n, prefix)
    return skus_in_distinct_partitions(n, prefix)


def assert_problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status and code; returns its body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body: dict[str, Any] = r.json()
    for name in PROBLEM_FIELDS:
        assert name in body, (name, body)
    assert body["status"] == status, body
    assert body["code"] == code, body
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def parse_ts(value: str) -> datetime:
    """An RFC 3339 UTC timestamp as the service writes it."""
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def available(client: httpx.AsyncClient, sku: str, channel: str = "web") -> int:
    r = await client.get(f"/v1/availability/{sku}", params={"channel": channel})
    assert r.status_code == 200, r.text
    value: int = r.json()["available"]
    return value


async def positions(client: httpx.AsyncClient, sku: str) -> dict[str, dict[str, Any]]:
    """Every position of a sku, by location."""
    r = await client.get(f"/v1/stock/{sku}")
    assert r.status_code == 200, r.text
    return {p["location"]: p for p in r.json()["positions"]}


async def position(client: httpx.AsyncClient, sku: str, location: str) -> dict[str, Any]:
    return (await positions(client, sku))[location]


async def snapshot(client: httpx.AsyncClient, skus: list[str]) -> dict[str, Any]:
    """Everything a client can see of these skus: positions and web availability."""
    out: dict[str, Any] = {}
    for sku in skus:
        out[sku] = {
            "positions": await positions(client, sku),
            "available": await available(client, sku),
        }
    return out


async def hold(
    client: httpx.AsyncClient, lines: list[dict[str, Any]], **body: Any
) -> dict[str, Any]:
    """Create a hold that must succeed (channel `web` unless given); returns it."""
    payload = {"channel": "web", **body, "lines": lines}
    r = await client.post("/v1/holds", json=payload)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


async def act(client: httpx.AsyncClient, hold_id: str, action: str, **kw: Any) -> httpx.Response:
    """POST /v1/holds/{id}/{action}; extend gets a default body."""
    if action == "extend" and "json" not in kw:
        kw["json"] = {"ttl_seconds": 600}
    return await client.post(f"/v1/holds/{hold_id}/{action}", **kw)


def lines_by_sku(h: dict[str, Any]) -> dict[str, list[tuple[str, int]]]:
    """A hold's lines as {sku: [(location, quantity), ...]} (sorted by location)."""
    out: dict[str, list[tuple[str, int]]] = {}
    for line in h["lines"]:
        out.setdefault(line["sku"], []).append((line["location"], line["quantity"]))
    return {sku: sorted(v) for sku, v in out.items()}


async def channels_by_id(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    r = await client.get("/v1/channels")
    assert r.status_code == 200, r.text
    return {c["id"]: c for c in r.json()["channels"]}


async def replay_after_dying(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, body: dict[str, Any], key: str
) -> httpx.Response:
    """POST the hold `body` with Idempotency-Key `key` from a worker that dies after the store
    made the hold, before it answers; then again: the retry's answer, a 201 replayed (the
    response is stored by the hold's own script, not by a call after it)."""

    def dies(*args: Any) -> None:
        raise RuntimeError("the worker dies before it answers")

    headers = {"Idempotency-Key": key}
    with monkeypatch.context() as patched:
        patched.setattr(holds_module, "render", dies)
        with pytest.raises(RuntimeError):
            await client.post("/v1/holds", json=body, headers=headers)
    retry = await client.post("/v1/holds", json=body, headers=headers)
    assert retry.status_code == 201, retry.text
    assert retry.headers["idempotent-replayed"] == "true"
    return retry
