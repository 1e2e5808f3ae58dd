"""Channel rules: a channel's buffer (units or percent kept back) and its excluded skus.

THE rule lives in lua/includes/channel_rules.lua (`channel_figure`), which every script that
computes a channel figure (events, hold sourcing) uses; `channel_figure` here is its Python
twin for the availability reads, checked against it on the same figures by
tests/lua/test_rules.py. `script_entry` is how a channel travels to those scripts.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from app.domain.models import BufferPercent, BufferUnits, Channel


def channel_figure(channel: Channel, sku: str, total: int) -> int:
    """What `channel` may promise of `sku`, whose units available at the locations counted
    (each location's available, safety stock already out, summed) are `total`: 0 for an
    excluded sku; else the total less the buffer (units, or `percent` of the total rounded up
    to a whole unit), never below 0."""
    if channel.excludes(sku):
        return 0
    buffer = channel.buffer
    if isinstance(buffer, BufferUnits):
        total -= buffer.units
    elif isinstance(buffer, BufferPercent):
        total = total * (100 - buffer.percent) // 100
    return max(total, 0)


def has_rules(channel: Channel) -> bool:
    return channel.buffer is not None or bool(channel.exclude_skus)


def script_entry(channel: Channel, skus: Collection[str] | None = None) -> list[Any]:
    """The channel as scripts take it: [low_stock_threshold, [locations]] and, when it has a
    rule, a third item {"u": units | "p": percent, "x": {sku: true}} (channel_rules.lua).
    `skus`: the skus the script may touch, so only their exclusions travel (None: all)."""
    entry: list[Any] = [channel.low_stock_threshold, channel.locations]
    rule: dict[str, Any] = {}
    if isinstance(channel.buffer, BufferUnits):
        rule["u"] = channel.buffer.units
    elif isinstance(channel.buffer, BufferPercent):
        rule["p"] = channel.buffer.percent
    excluded = [s for s in channel.exclude_skus if skus is None or s in skus]
    if excluded:
        rule["x"] = dict.fromkeys(excluded, True)
    if rule:
        entry.append(rule)
    return entry


def over_figure(
    channel: Channel, need: Mapping[str, int], totals: Mapping[str, int]
) -> list[dict[str, Any]]:
    """The skus a hold through `channel` needs more of (`need`: units by sku) than the
    channel's figure of their `totals`, as hold_reserve.lua's channel_short() reports them:
    {"sku", "requested", "available": the figure}."""
    out = []
    for sku, n in need.items():
        figure = channel_figure(channel, sku, totals[sku])
        if n > figure:
            out.append({"sku": sku, "requested": n, "available": figure})
    return out
