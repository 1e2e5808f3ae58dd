"""Event ids: `<ms>-<seq>-<ppp>`, the stream id of the entry plus its 3-digit partition.

Ordered as the tuple (ms, seq, partition); an id is also a cursor meaning "every event up to
and including this one". A cursor need not name a real event: `EventId.before(t0)` means
"everything written before the store time t0".
"""

from __future__ import annotations

import re
from typing import NamedTuple

from app import keys
from app.domain.errors import InvalidRequest

MAX_SEQ = 2**64 - 1  # a stream id's sequence is an unsigned 64-bit number
_EVENT_ID = re.compile(r"^([0-9]{1,15})-([0-9]{1,20})-([0-9]{3})$")  # ASCII digits only


class EventId(NamedTuple):
    ms: int
    seq: int
    partition: int

    def __str__(self) -> str:
        return f"{self.ms}-{self.seq}-{self.partition:03d}"

    @classmethod
    def of(cls, stream_id: str, partition: int) -> EventId:
        ms, seq = parse_stream_id(stream_id)
        return cls(ms, seq, partition)

    @classmethod
    def before(cls, t0_ms: int) -> EventId:
        """The cursor just below every event stamped t0_ms or later."""
        return cls(t0_ms - 1, MAX_SEQ, keys.PARTITIONS - 1)

    def first_stream_id(self, partition: int) -> tuple[int, int]:
        """The smallest stream id (ms, seq) in `partition` whose event comes after this
        cursor: the same (ms, seq) in a higher partition, the next one in this or a lower."""
        if partition > self.partition:
            return self.ms, self.seq
        return successor(self.ms, self.seq)


def parse_event_id(text: str, field: str = "after") -> EventId:
    """A cursor from a client; a malformed one is a 422 problem."""
    match = _EVENT_ID.match(text)
    if match:
        ms, seq, partition = (int(g) for g in match.groups())
        if seq <= MAX_SEQ and partition < keys.PARTITIONS:
            return EventId(ms, seq, partition)
    raise InvalidRequest(
        "not an event id: expected <ms>-<seq>-<partition>, e.g. 1764000000123-0-042",
        errors=[{"loc": [field], "msg": f"invalid event id {text[:64]!r}"}],
    )


def parse_stream_id(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def successor(ms: int, seq: int) -> tuple[int, int]:
    return (ms + 1, 0) if seq >= MAX_SEQ else (ms, seq + 1)


def predecessor(ms: int, seq: int) -> tuple[int, int]:
    if seq > 0:
        return ms, seq - 1
    return (ms - 1, MAX_SEQ) if ms > 0 else (0, 0)


def stream_id(ms_seq: tuple[int, int]) -> str:
    return f"{ms_seq[0]}-{ms_seq[1]}"
