"""A hold as the API shows it, from its records; and a created hold's response stored by
hold_reserve.lua or hold_backorder.lua in deferred form (lua/includes/idempotency.lua
IDEM_HOLD_CREATED), rendered here exactly as the first response was."""

from __future__ import annotations

from typing import Any

import orjson

from app.domain import backorder
from app.domain.clock import iso
from app.domain.hold_lines import line_views
from app.domain.hold_parts import effective_status

# The prefix of a created hold's stored response (lua/includes/idempotency.lua).
HOLD_CREATED = b"\0hold_created\0"


def render(hold_id: str, records: list[dict[str, str]]) -> dict[str, Any]:
    """The hold as its parts are: the home part's status (by the store's clock: a lapsed
    part is expired, whatever the reaper has marked yet), and the lines of the parts in
    that status. After settling the parts agree; a part that could not follow (gone, or
    lapsed past its grace) is not shown as reserved."""
    home = records[0]
    status = effective_status(home)
    lines: list[dict[str, Any]] = []
    for record in records:
        if record and effective_status(record) == status:
            lines += line_views(record, status)
            lines += backorder.promised_lines(record)
    return {
        "id": hold_id,
        "status": status,
        "channel": home["channel"] or None,
        "reference": home["reference"] or None,
        "created_at": iso(int(home["created_at"])),
        "expires_at": iso(int(home["expires_at"])),
        "lines": lines,
        "metadata": orjson.loads(metadata) if (metadata := home.get("metadata")) else {},
    }


def stored_body(body: str | bytes) -> bytes:
    """A stored response's body as the client gets it: a created hold's deferred form
    rendered (the record as hold_reserve.lua or hold_backorder.lua wrote it at that moment),
    anything else as is."""
    raw = body.encode() if isinstance(body, str) else body
    if not raw.startswith(HOLD_CREATED):
        return raw
    fields = orjson.loads(raw[len(HOLD_CREATED) :])
    hold_id, status, channel, reference, created, expires, lines = fields[:7]
    record = {
        "status": status,
        "channel": channel,
        "reference": reference,
        "created_at": created,
        "expires_at": expires,
        "lines": lines,
    }
    if len(fields) > 7 and fields[7]:  # metadata as the script wrote it ("": none)
        record["metadata"] = fields[7]
    if len(fields) > 8:  # a backorder hold's promises (hold_backorder.lua)
        record["promises"] = fields[8]
    return orjson.dumps(render(hold_id, [record]))
