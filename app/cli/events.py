"""`omnistock events tail`: follow a running service's outgoing events, like `tail -f`.

Live events come over Server-Sent Events (GET /v1/events), resumed with `Last-Event-ID`
after any disconnect, so nothing is missed or repeated across reconnects. `--from-start`
(or `--after ID`) first reads what is retained from the JSON log (GET /v1/events/log) and
then follows; `--no-follow` stops when the log is read. Filters: --sku, --location,
--channel. One JSON object per line (default) or a line of text per event.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from http.client import HTTPException
from typing import Any

import orjson

from app.cli.common import UNREACHABLE, CliError, Service, add_action, command, command_group

LOG_PAGE = 500


class Tail:
    def __init__(self, args: argparse.Namespace, service: Service) -> None:
        self.args = args
        self.service = service
        self.filters = {"sku": args.sku, "location": args.location, "channel": args.channel}
        self.cursor: str | None = args.after
        self.shown = 0

    @property
    def done(self) -> bool:
        return self.args.limit is not None and self.shown >= self.args.limit

    def show(self, event: dict[str, Any]) -> None:
        print(orjson.dumps(event).decode() if self.args.format == "json" else _text(event))
        sys.stdout.flush()
        self.shown += 1

    def read_log(self) -> None:
        """Every retained event after the cursor, page by page, oldest first."""
        while not self.done:
            limit = LOG_PAGE if self.args.limit is None else min(LOG_PAGE, self.args.limit)
            query = {"after": self.cursor, "limit": limit, **self.filters}
            page = self.service.request("GET", "/v1/events/log", query=query)
            for event in page["events"]:
                self.show(event)
                if self.done:
                    self.cursor = event["id"]
                    return
            moved = page["next"] != self.cursor
            self.cursor = page["next"]
            if not page["events"] and not moved:
                return

    def follow(self) -> None:
        """Live events after the cursor, reconnecting (with Last-Event-ID) when cut off."""
        url = self.service.path("/v1/events", **self.filters)
        connected_once = False
        retry = 1.0
        while not self.done:
            headers = {"Accept": "text/event-stream"}
            if self.cursor:
                headers["Last-Event-ID"] = self.cursor
            try:
                with self.service.stream(url, headers, self.args.idle_timeout) as response:
                    connected_once = True
                    for field, value in _fields(response):
                        if field == "retry" and value.isdigit():
                            retry = int(value) / 1000
                        elif field == "data":
                            event = orjson.loads(value)
                            self.show(event)
                            self.cursor = event.get("id", self.cursor)
                            if self.done:
                                return
            except CliError as exc:
                if not connected_once or exc.code != UNREACHABLE:
                    raise
                print(f"omnistock events tail: {exc.message}; retrying", file=sys.stderr)
            except (OSError, HTTPException) as exc:  # timeouts and cut connections
                print(
                    f"omnistock events tail: stream interrupted ({exc}); resuming", file=sys.stderr
                )
            time.sleep(retry)


def _fields(response: Any) -> Iterator[tuple[str, str]]:
    """(field, value) of each SSE line; multi-line `data` is joined, comments skipped."""
    data: list[str] = []
    for raw in response:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield "data", "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        else:
            yield field, value


def _text(event: dict[str, Any]) -> str:
    if event.get("type") == "reset":
        return f"{event.get('at', '')} reset  {event.get('reason', '')}: {event.get('detail', '')}"
    position = event.get("position", {})
    cause = event.get("cause", {})
    why = cause.get("hold") or cause.get("source_event") or ""
    return (
        f"{event.get('at', '')} {event.get('type', ''):<18} {event.get('sku', '')} @ "
        f"{event.get('location', '')}  on_hand={position.get('on_hand')} "
        f"held={position.get('held')} committed={position.get('committed')} "
        f"available={position.get('available')}" + (f"  ({why})" if why else "")
    )


@command("events tail")
def tail(args: argparse.Namespace) -> int:
    runner = Tail(args, Service.from_args(args))
    if args.from_start or args.no_follow:
        runner.read_log()
    if not args.no_follow:
        runner.follow()
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    actions = command_group(
        sub,
        "events",
        help="follow the stock events of a running service",
        description="Read the outgoing events of a running service. Exit 0 done (or "
        "interrupted), 1 the service refused, 2 usage or API-key error, 3 unreachable.",
    )
    p_tail = add_action(
        actions,
        "tail",
        tail,
        help="print events as they happen (like tail -f)",
        description="Print events as they happen, one per line, resuming across "
        "disconnects without gaps. --from-start or --after read the retained log first.",
        service=True,
    )
    p_tail.add_argument("--sku", help="only this sku")
    p_tail.add_argument("--location", help="only this location")
    p_tail.add_argument("--channel", help="only the locations this channel sells from")
    start = p_tail.add_mutually_exclusive_group()
    start.add_argument("--after", metavar="EVENT_ID", help="start after this event id")
    start.add_argument(
        "--from-start", action="store_true", help="start from the oldest retained event"
    )
    p_tail.add_argument(
        "--no-follow", action="store_true", help="stop at the end of the log instead of following"
    )
    p_tail.add_argument("-n", "--limit", type=int, metavar="N", help="stop after N events")
    p_tail.add_argument(
        "--format",
        choices=["json", "text"],
        default="json",
        help="one JSON object (default) or a line of text per event",
    )
    p_tail.add_argument(
        "--idle-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="reconnect when the stream is silent this long (keep-alives count; 60)",
    )
