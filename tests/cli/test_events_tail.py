"""`omnistock events tail`: the service's events, from the log and live, with filters."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from app.store.embedded import free_port
from tests.cli.conftest import seed

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def lines(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in text.splitlines()]


def following(
    live_url: str, flags: list[str], changes: Callable[[], object]
) -> list[dict[str, Any]]:
    """The events the real `omnistock events tail` process prints (exit 0) while `changes()`
    runs: it follows the live stream until its `--limit`."""
    argv = [sys.executable, "-m", "app", "events", "tail", "--url", live_url, *flags]
    tail = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, text=True
    )
    try:
        changes()
        out, err = tail.communicate(timeout=20)
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.wait()
    assert tail.returncode == 0, err
    return lines(out)


def log_ids(api: httpx.Client, **query: str) -> list[str]:
    return [e["id"] for e in api.get("/v1/events/log", params=query).json()["events"]]


def test_no_follow_prints_every_retained_event_oldest_first_and_exits(
    api: httpx.Client, cli: Any, live_url: str
) -> None:
    seed(api, {("SKU-1", "dc-north"): 5, ("SKU-1", "store-12"): 2, ("SKU-2", "dc-north"): 1})
    result = cli("events", "tail", "--url", live_url, "--no-follow")
    assert result.code == 0, result.err
    assert [e["id"] for e in lines(result.out)] == log_ids(api)
    assert len(lines(result.out)) == 3


def test_filters_pick_the_events_of_one_sku_and_location(
    api: httpx.Client, cli: Any, live_url: str
) -> None:
    seed(api, {("SKU-1", "dc-north"): 5, ("SKU-1", "store-12"): 2, ("SKU-2", "store-12"): 1})
    result = cli(
        "events",
        "tail",
        "--url",
        live_url,
        "--no-follow",
        "--sku",
        "SKU-1",
        "--location",
        "store-12",
    )
    events = lines(result.out)
    assert [(e["sku"], e["location"], e["type"]) for e in events] == [
        ("SKU-1", "store-12", "stock.set")
    ]


def test_after_starts_after_the_given_event(api: httpx.Client, cli: Any, live_url: str) -> None:
    seed(api, {("SKU-1", "dc-north"): 5, ("SKU-1", "store-12"): 2})
    first, second = log_ids(api)
    result = cli("events", "tail", "--url", live_url, "--no-follow", "--after", first)
    assert [e["id"] for e in lines(result.out)] == [second]


def test_text_format_prints_one_readable_line_per_event(
    api: httpx.Client, cli: Any, live_url: str
) -> None:
    seed(api, {("SKU-1", "dc-north"): 5})
    hold = api.post("/v1/holds", json={"lines": [{"sku": "SKU-1", "quantity": 2}]}).json()
    result = cli("events", "tail", "--url", live_url, "--no-follow", "--format", "text")
    set_line, hold_line = result.out.splitlines()
    assert "stock.set" in set_line and "SKU-1 @ dc-north" in set_line and "available=5" in set_line
    assert "hold.reserved" in hold_line and "held=2" in hold_line and hold["id"] in hold_line


def test_limit_stops_after_that_many_events(api: httpx.Client, cli: Any, live_url: str) -> None:
    seed(api, {("SKU-1", "dc-north"): 5, ("SKU-1", "store-12"): 2, ("SKU-2", "dc-north"): 1})
    result = cli("events", "tail", "--url", live_url, "--no-follow", "--limit", "2")
    assert [e["id"] for e in lines(result.out)] == log_ids(api)[:2]


@pytest.mark.slow
def test_follow_prints_live_events_as_they_happen(api: httpx.Client, live_url: str) -> None:
    """The real `omnistock` process, following the live stream from a known event on: it
    sees changes made after it started, then stops at --limit."""
    seed(api, {("SKU-1", "dc-north"): 5})
    (start,) = log_ids(api)

    def changes() -> None:
        api.put("/v1/stock/SKU-1/dc-north", json={"on_hand": 8}).raise_for_status()
        api.post("/v1/holds", json={"lines": [{"sku": "SKU-1", "quantity": 1}]}).raise_for_status()

    events = following(live_url, ["--sku", "SKU-1", "--after", start, "--limit", "2"], changes)
    assert [e["type"] for e in events] == ["stock.set", "hold.reserved"]
    assert events[0]["position"]["on_hand"] == 8


@pytest.mark.slow
def test_from_start_reads_the_log_then_follows(api: httpx.Client, live_url: str) -> None:
    seed(api, {("SKU-1", "dc-north"): 5, ("SKU-1", "store-12"): 2})
    events = following(
        live_url,
        ["--from-start", "--limit", "3"],
        lambda: api.put("/v1/stock/SKU-3/store-12", json={"on_hand": 1}).raise_for_status(),
    )
    assert [(e["sku"], e["location"]) for e in events] == [
        ("SKU-1", "dc-north"),
        ("SKU-1", "store-12"),
        ("SKU-3", "store-12"),
    ]


def test_an_unknown_channel_filter_exits_1_with_the_problem(cli: Any, live_url: str) -> None:
    result = cli("events", "tail", "--url", live_url, "--no-follow", "--channel", "kiosk")
    assert result.code == 1
    assert "404 channel_not_found" in result.err


def test_a_malformed_cursor_is_a_usage_error(cli: Any, live_url: str) -> None:
    result = cli("events", "tail", "--url", live_url, "--no-follow", "--after", "yesterday")
    assert result.code == 2
    assert "422 invalid_request" in result.err


@pytest.mark.parametrize("mode", [["--no-follow"], []], ids=["log", "live"])
def test_an_unreachable_service_exits_3(cli: Any, mode: list[str]) -> None:
    result = cli("events", "tail", "--url", f"http://127.0.0.1:{free_port()}", *mode)
    assert result.code == 3
    assert "service unreachable" in result.err
