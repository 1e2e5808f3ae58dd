"""`omnistock channels list|put`: the channels of a running service, over its HTTP API (for
the same reasons as `omnistock locations`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from app.cli.common import (
    USAGE,
    CliError,
    Service,
    add_action,
    command,
    command_group,
    print_table,
)


def _rows(channels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "id": c["id"],
            "low_stock_threshold": c["low_stock_threshold"],
            "locations": ",".join(c["locations"]),
            "buffer": _buffer_text(c.get("buffer")),
            "exclude_skus": len(c.get("exclude_skus") or []),
        }
        for c in channels
    ]


COLUMNS = ["id", "low_stock_threshold", "locations", "buffer", "exclude_skus"]


def _buffer_text(buffer: dict[str, int] | None) -> str:
    if not buffer:
        return "-"
    if "percent" in buffer:
        return f"{buffer['percent']}%"
    return f"{buffer['units']} units"


def _rules(args: argparse.Namespace, current: dict[str, Any] | None) -> dict[str, Any]:
    """The channel rules to send: the flags given, else the channel's current ones (a PUT
    replaces the whole channel, so what is not sent would be cleared)."""
    buffer = current.get("buffer") if current else None
    if args.no_buffer:
        buffer = None
    elif args.buffer_units is not None:
        buffer = {"units": args.buffer_units}
    elif args.buffer_percent is not None:
        buffer = {"percent": args.buffer_percent}
    excluded = list(current.get("exclude_skus") or []) if current else []
    if args.exclude_skus is not None:
        excluded = _split([args.exclude_skus])
    return {"buffer": buffer, "exclude_skus": excluded}


@command("channels list")
def list_channels(args: argparse.Namespace) -> int:
    channels = Service.from_args(args).request("GET", "/v1/channels")["channels"]
    if args.json:
        print(orjson.dumps({"channels": channels}).decode())
    else:
        print_table(_rows(channels), COLUMNS)
    return 0


def _split(values: list[str] | None) -> list[str]:
    return [v for value in values or [] for v in value.split(",") if v]


@command("channels put")
def put_channel(args: argparse.Namespace) -> int:
    """--locations replaces the list; --add/--remove edit it; a flag not given keeps the
    channel's current value."""

    service = Service.from_args(args)
    current: dict[str, Any] | None = None
    for channel in service.request("GET", "/v1/channels")["channels"]:
        if channel["id"] == args.id:
            current = channel
    locations = list(current["locations"]) if current else []
    if args.locations is not None:
        locations = _split([args.locations])
    locations += [loc for loc in _split(args.add) if loc not in locations]
    removed = set(_split(args.remove))
    locations = [loc for loc in locations if loc not in removed]
    if current is None and args.locations is None and not args.add:
        raise CliError(USAGE, f"new channel {args.id}: give its --locations")
    doc: dict[str, Any] = {"locations": locations}
    threshold = args.low_stock_threshold
    if threshold is None and current is not None:
        threshold = current["low_stock_threshold"]
    if threshold is not None:
        doc["low_stock_threshold"] = threshold
    doc.update(_rules(args, current))
    saved = service.request("PUT", f"/v1/channels/{args.id}", doc)
    if args.json:
        print(orjson.dumps(saved).decode())
    else:
        print(f"{'updated' if current else 'registered'} channel {saved['id']}", file=sys.stderr)
        print_table(_rows([saved]), COLUMNS)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    actions = command_group(
        sub,
        "channels",
        help="list or configure the channels (web, app, pos ...) of a running service",
        description="Manage the channels of a running service through its HTTP API: which "
        "locations each sells from, its low-stock threshold, its buffer and the skus it must "
        "not see. Exit 0 done, 1 the service refused, 2 usage or API-key error, 3 unreachable.",
    )
    add_action(
        actions,
        "list",
        list_channels,
        "every channel and its locations",
        service=True,
        json="print JSON",
    )
    p_put = add_action(
        actions,
        "put",
        put_channel,
        help="configure a channel, or change the given fields of one",
        description="Configure a channel. --locations sets the whole list; --add and "
        "--remove change an existing one; flags not given keep their current value.",
        service=True,
        json="print the saved channel as JSON",
    )
    p_put.add_argument("id", help="channel id, e.g. web")
    p_put.add_argument("--locations", metavar="A,B,...", help="the eligible locations, in order")
    p_put.add_argument("--add", action="append", metavar="ID", help="add a location (repeatable)")
    p_put.add_argument(
        "--remove", action="append", metavar="ID", help="remove a location (repeatable)"
    )
    p_put.add_argument(
        "--low-stock-threshold", type=int, metavar="N", help="available <= N is low_stock"
    )
    rule = p_put.add_mutually_exclusive_group()
    rule.add_argument(
        "--buffer-units", type=int, metavar="N", help="keep N units of each sku back from it"
    )
    rule.add_argument(
        "--buffer-percent", type=int, metavar="P", help="keep P%% of each sku back (rounded up)"
    )
    rule.add_argument("--no-buffer", action="store_true", help="remove its buffer")
    p_put.add_argument(
        "--exclude-skus", metavar="A,B,...", help="the skus it must not see ('' for none)"
    )
