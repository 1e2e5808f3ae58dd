"""Event ids, cursors and the entry -> public JSON conversion (no store needed)."""

from __future__ import annotations

import orjson
import pytest

from app.domain.errors import InvalidRequest
from app.events.ids import MAX_SEQ, EventId, parse_event_id, predecessor, successor
from app.events.model import from_entry, reset_event


def test_id_round_trip_and_order() -> None:
    ev = parse_event_id("1764000000123-7-042")
    assert ev == EventId(1764000000123, 7, 42)
    assert str(ev) == "1764000000123-7-042"
    ordered = ["5-0-003", "5-0-010", "5-1-000", "6-0-000"]
    assert sorted(parse_event_id(i) for i in reversed(ordered)) == [
        parse_event_id(i) for i in ordered
    ]


@pytest.mark.parametrize(
    "bad",
    ["", "abc", "1-2", "1-2-3-4", "1-2-256", "-1-0-000", "1-0-42", "1-99999999999999999999-000"],
)
def test_bad_ids_are_invalid_requests(bad: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_event_id(bad)


def test_cursor_start_per_partition() -> None:
    cursor = EventId(100, 5, 42)
    assert cursor.first_stream_id(43) == (100, 5)  # same stream id, later partition: after
    assert cursor.first_stream_id(42) == (100, 6)
    assert cursor.first_stream_id(0) == (100, 6)
    assert EventId(100, MAX_SEQ, 1).first_stream_id(0) == (101, 0)
    assert successor(7, MAX_SEQ) == (8, 0) and predecessor(8, 0) == (7, MAX_SEQ)
    before = EventId.before(500)
    assert all(before.first_stream_id(p) == (500, 0) for p in (0, 255))


def test_full_entry() -> None:
    channels = [
        {
            "channel": "web",
            "available_before": 5,
            "available_after": 3,
            "status_before": "in_stock",
            "status_after": "low_stock",
        }
    ]
    fields = {
        "type": "stock.sale",
        "sku": "s1",
        "location": "dc",
        "at": "1764000000000",
        "on_hand": "4",
        "held": "1",
        "committed": "0",
        "safety_stock": "0",
        "available": "3",
        "source_event": "pos-1",
        "channels": orjson.dumps(channels).decode(),
    }
    ev = from_entry(42, "1764000000123-0", fields)
    assert ev.doc == {
        "id": "1764000000123-0-042",
        "type": "stock.sale",
        "sku": "s1",
        "location": "dc",
        "at": "2025-11-24T16:00:00.000Z",
        "cause": {"type": "sale", "source_event": "pos-1"},
        "position": {"on_hand": 4, "held": 1, "committed": 0, "safety_stock": 0, "available": 3},
        "availability": [
            {
                "channel": "web",
                "before": {"available": 5, "status": "in_stock"},
                "after": {"available": 3, "status": "low_stock"},
            }
        ],
    }
    frame = ev.frame.decode()
    assert frame.startswith("id: 1764000000123-0-042\nevent: stock.sale\ndata: {")
    assert frame.endswith("}\n\n") and frame.count("\n") == 4


def test_minimal_and_odd_entries_are_tolerated() -> None:
    ev = from_entry(
        1, "1764000000123-4", {"type": "hold.reserved", "sku": "s", "location": "l", "hold": "h1"}
    )
    assert ev.doc["at"] == "2025-11-24T16:00:00.123Z"  # no `at`: the stream id's time
    assert ev.doc["cause"] == {"type": "reserved", "hold": "h1"}
    assert ev.doc["position"] == dict.fromkeys(
        ("on_hand", "held", "committed", "safety_stock", "available"), 0
    )
    assert ev.doc["availability"] == []
    odd = from_entry(
        1,
        "1-0",
        {"type": "shortfall", "sku": "s", "location": "l", "on_hand": "-2.0", "holds": "{}"},
    )
    assert odd.doc["position"]["on_hand"] == -2
    assert odd.doc["holds"] == [] and odd.doc["shortfall"] == 0
    assert from_entry(1, "1-0", {"type": "x", "channels": "not json"}).doc["availability"] == []


def test_shortfall_entry() -> None:
    ev = from_entry(
        3,
        "10-0",
        {
            "type": "shortfall",
            "sku": "s",
            "location": "dc",
            "shortfall": "3",
            "holds": '["h2","h1"]',
            "source_event": "pos-9",
        },
    )
    assert ev.doc["holds"] == ["h2", "h1"] and ev.doc["shortfall"] == 3
    assert ev.doc["cause"] == {"type": "shortfall", "source_event": "pos-9"}


def test_reset_event() -> None:
    cursor = EventId.before(1764000000000)
    ev = reset_event(cursor, 1764000000000, "cursor_expired")
    assert ev.type == "reset" and ev.doc["id"] == str(cursor)
    assert ev.frame.startswith(b"id: 1763999999999-18446744073709551615-255\nevent: reset\n")
