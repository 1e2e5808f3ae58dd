"""A stream entry as the public event JSON of the contract, and its SSE frame.

Entry fields are strings written by the scripts (lua/includes/emit.lua, shortfall.lua). Only
type, sku, location and the position are always there; `at`, `hold`, `source_event`,
`channels`, `holds` and `shortfall` may be missing, and a missing one is simply left out (or
an empty list for `availability`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.domain.clock import iso
from app.events.ids import EventId

log = logging.getLogger("omnistock.events")

POSITION_FIELDS = ("on_hand", "held", "committed", "safety_stock", "available")
_CAUSE_PREFIXES = ("stock.", "hold.", "supply.")


@dataclass(slots=True)
class Event:
    id: EventId
    type: str
    sku: str
    location: str
    doc: dict[str, Any]
    _frame: bytes | None = field(default=None, repr=False)

    @property
    def frame(self) -> bytes:
        """`id:`, `event:` and `data:` lines; built once, shared by every subscriber."""
        if self._frame is None:
            self._frame = sse_frame(str(self.id), self.type, orjson.dumps(self.doc))
        return self._frame


def sse_frame(event_id: str, event_type: str, data: bytes) -> bytes:
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (event_id.encode(), event_type.encode(), data)


def from_entry(partition: int, stream_id: str, fields: dict[str, str]) -> Event:
    event_id = EventId.of(stream_id, partition)
    ev_type = fields.get("type", "unknown")
    sku, location = fields.get("sku", ""), fields.get("location", "")
    cause: dict[str, Any] = {"type": _cause_type(ev_type)}
    for name in ("hold", "source_event"):
        if fields.get(name):
            cause[name] = fields[name]
    at = _int(fields.get("at")) if fields.get("at") else event_id.ms
    doc: dict[str, Any] = {
        "id": str(event_id),
        "type": ev_type,
        "sku": sku,
        "location": location,
        "at": iso(at),
        "cause": cause,
        "position": {name: _int(fields.get(name)) for name in POSITION_FIELDS},
        "availability": _availability(fields.get("channels"), event_id),
    }
    if ev_type == "shortfall":
        holds = _json(fields.get("holds"), event_id)
        doc["holds"] = [str(h) for h in holds] if isinstance(holds, list) else []
        doc["shortfall"] = _int(fields.get("shortfall"))
    if fields.get("supply"):  # supply.* and promise_broken (lua/supply_put.lua)
        _add_supply(doc, fields, event_id)
    return Event(event_id, ev_type, sku, location, doc)


def _add_supply(doc: dict[str, Any], fields: dict[str, str], event_id: EventId) -> None:
    """The supply line an event is about (its eta as RFC 3339), and for `promise_broken` the
    holds whose promised units lost their backing: `holds` their ids (as in `shortfall`),
    `broken` [{"hold", "units"}]."""
    line = _json(fields.get("supply"), event_id)
    if isinstance(line, dict):
        if "eta" in line:
            line["eta"] = iso(_int(line["eta"]))
        line["reference"] = line.get("reference") or None
        doc["supply"] = line
    if doc["type"] == "promise_broken":
        holds = _json(fields.get("holds"), event_id)
        doc["broken"] = [
            {"hold": str(h.get("hold")), "units": _int(h.get("units"))}
            for h in (holds if isinstance(holds, list) else [])
            if isinstance(h, dict)
        ]
        doc["holds"] = [b["hold"] for b in doc["broken"]]


def reset_event(cursor: EventId, t0_ms: int, reason: str) -> Event:
    """Tells a client its resume point is gone: refetch availability, then follow from here.
    Its id is a cursor just below the store time t0, so resuming after it misses nothing."""
    doc = {
        "id": str(cursor),
        "type": "reset",
        "at": iso(t0_ms),
        "reason": reason,
        "detail": "events after your resume point are no longer retained; refetch "
        "availability, then continue from this event",
    }
    return Event(cursor, "reset", "", "", doc)


def _cause_type(ev_type: str) -> str:
    for prefix in _CAUSE_PREFIXES:
        if ev_type.startswith(prefix):
            return ev_type[len(prefix) :]
    return ev_type


def _availability(raw: str | None, event_id: EventId) -> list[dict[str, Any]]:
    changes = _json(raw, event_id)
    if not isinstance(changes, list):  # absent, or Lua's cjson writing {} for an empty list
        return []
    out = []
    for change in changes:
        if not isinstance(change, dict) or "channel" not in change:
            continue
        out.append(
            {
                "channel": str(change["channel"]),
                "before": {
                    "available": _int(change.get("available_before")),
                    "status": change.get("status_before"),
                },
                "after": {
                    "available": _int(change.get("available_after")),
                    "status": change.get("status_after"),
                },
            }
        )
    return out


def _json(raw: str | None, event_id: EventId) -> Any:
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        log.warning("event %s: unreadable JSON field %r", event_id, raw[:200])
        return None


def _int(value: object) -> int:
    """Counters arrive as Lua's number strings ("5", rarely "5.0" or "1e+12")."""
    if value is None or value == "":
        return 0
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        try:
            return int(float(str(value)))
        except ValueError:
            return 0
