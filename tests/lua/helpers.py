"""Helpers shared by the tests that call scripts directly (tests/lua, tests/store, tests/audit)."""

from __future__ import annotations

from typing import Any

from app.store import calls
from app.store.calls import HoldStatus


def new_hold(
    *, partition: int, hold_id: str, skus: list[str], lines: list[dict[str, Any]], **given: Any
) -> calls.NewHold:
    """An active one-partition hold of `lines` (over `skus`, 1-based) that lapses in a minute,
    every field of calls.NewHold a test does not give at a neutral value."""
    neutral: dict[str, Any] = {
        "status": HoldStatus.ACTIVE,
        "ttl_ms": 60_000,
        "pending_ttl_ms": 0,
        "pending_grace_ms": 0,
        "channel": "",
        "reference": "",
        "parts": str(partition),
        "retention_ms": 86_400_000,
        "candidates": [],
        "channels": b"{}",
        "owner": "owner",
    }
    return calls.NewHold(
        partition=partition, hold_id=hold_id, skus=skus, lines=lines, **(neutral | given)
    )


def reserve_call(
    *,
    partition: int,
    hold_id: str,
    skus: list[str],
    lines: list[dict[str, Any]],
    allow_split: bool = False,
    max_locations: int | None = None,
    **given: Any,
) -> calls.Call:
    """calls.hold_reserve of a new_hold()."""
    hold = new_hold(partition=partition, hold_id=hold_id, skus=skus, lines=lines, **given)
    return calls.hold_reserve(hold, allow_split=allow_split, max_locations=max_locations)
