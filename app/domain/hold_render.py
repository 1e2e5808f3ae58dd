"""A hold as the API shows it, from its records; and a created hold's response stored by
hold_reserve.lua in deferred form (lua/includes/idempotency.lua IDEM_HOLD_CREATED), rendered
here exactly as the first response was."""

from __future__ import annotations

from typing import Any

import orjson

from app.domain.clock import iso
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
            lines += orjson.loads(record["lines"])
    return {
        "id": hold_id,
        "status": status,
        "channel": home["channel"] or None,
        "reference": home["reference"] or None,
        "created_at": iso(int(home["created_at"])),
        "expires_at": iso(int(home["expires_at"])),
        "lines": lines,
    }


def stored_body(body: str | bytes) -> bytes:
    """A stored response's body as the client gets it: a created hold's deferred form
    rendered (the record as hold_reserve.lua wrote it at that moment), anything else as is."""
    raw = body.encode() if isinstance(body, str) else body
    if not raw.startswith(HOLD_CREATED):
        return raw
    hold_id, status, channel, reference, created, expires, lines = orjson.loads(
        raw[len(HOLD_CREATED) :]
    )
    record = {
        "status": status,
        "channel": channel,
        "reference": reference,
        "created_at": created,
        "expires_at": expires,
        "lines": lines,
    }
    return orjson.dumps(render(hold_id, [record]))
