"""An Idempotency-Key claim, taken in the slot of the change it guards.

The HTTP layer (app/api/idempotency.py) makes a `Claim` for a keyed request; the domain
names the slot of the change (`lives_in`) and hands the claim to that change's script, which
takes it before anything else (lua/includes/idempotency.lua): one primary decides a keyed
write, and replication of one slot is one ordered stream, so a failover that loses the change
loses its claim, and one that keeps a stored response kept the change.

This module is the one Python place that builds the record's key and ARGV
(`idem_for`, through app/store/calls.Idem) and reads the claim's replies (`checked`).

Slots: a hold create's home partition (its first line's), a hold's home partition for its
transitions, the sku's partition for a stock PUT, `{cfg}` for locations and channels, and the
first event's partition for a stock-events batch (its events span partitions; each event's
(location, id) identity makes its own retry exact). A change that spans slots (a
multi-partition hold, an events batch) is claimed by `take` in that slot before it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app import keys
from app.domain.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from app.store import calls
from app.store.calls import Idem, IdemReply, Reply
from app.store.scripts import Scripts


class StoredResponse(Exception):
    """The key's request has finished before: replay its stored response."""

    def __init__(self, status: int, body: str | bytes) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


@dataclass
class Claim:
    key: str  # the header's value, for messages
    digest: str  # sha256 of (owner, scope, key): the record's and the keyed hold id's name
    fingerprint: str  # sha256 of method, path and canonical body
    lease_ms: int
    ttl_seconds: int
    slot: str | None = None  # the tag of the change's slot, once the domain has named it
    taken: bool = False  # a script of this request holds (or may hold) the claim
    # the change's script stored the response with the change (a created hold): nothing to
    # complete, and nothing to give up
    stored: bool = False

    def lives_in(self, slot: str) -> None:
        """Name the slot of the change this request makes (before anything can fail), so an
        error answered before the change's script ran is stored there too."""
        self.slot = slot

    def record(self) -> str:
        if self.slot is None:
            raise ValueError("the claim's slot is not known yet")
        return keys.idempotency(self.slot, self.digest)

    def idem(self) -> Idem:
        """The record and claim ARGV a script takes (the slot must be known)."""
        return Idem(self.record(), self.fingerprint, self.lease_ms, self.ttl_seconds)


def sku_partition(claim: Claim | None, sku: str) -> int:
    """The partition of a change to `sku`; a keyed request's claim lives in its slot from
    here on, so a refusal before the script (an unknown location: 404) is stored there."""
    p = keys.partition_of(sku)
    if claim is not None:
        claim.lives_in(keys.tag(p))
    return p


def idem_for(claim: Claim | None, slot: str) -> Idem | None:
    """The last key and the last three ARGV of every script that takes a keyed request
    (lua/includes/idempotency.lua), for a change in `slot`. Passing them marks the claim
    taken: from here on the request's record may exist in that slot. No claim: nothing."""
    if claim is None:
        return None
    claim.lives_in(slot)
    claim.taken = True
    return claim.idem()


def checked(claim: Claim | None, reply: Any) -> Any:
    """A script's reply, unless it is the claim's answer: then raise it (and the claim was
    not taken by this request)."""
    if not (isinstance(reply, list) and reply and reply[0] == Reply.IDEM):
        return reply
    assert claim is not None, "a script answered a claim nobody passed"
    claim.taken = False
    if reply[1] == IdemReply.REUSED:
        raise IdempotencyKeyReused(
            f"Idempotency-Key {claim.key!r} was used for a different request"
        )
    if reply[1] == IdemReply.IN_USE:
        raise IdempotencyKeyInUse(f"a request with Idempotency-Key {claim.key!r} is still running")
    # imported here: hold_render reaches back to this module (through backorder)
    from app.domain.hold_render import stored_body

    raise StoredResponse(int(reply[2]), stored_body(reply[3]))


async def take(
    scripts: Scripts, claim: Claim | None, slot: str, offset_ms: int, response: Any = None
) -> None:
    """Claim by itself in `slot` (idempotency_claim.lua) for a change that is not one script;
    with `response` (status, body), claim and store it in one step."""
    if claim is None:
        return
    status, body = response if response is not None else ("", b"")
    idem = idem_for(claim, slot)
    assert idem is not None
    checked(claim, await scripts.run(calls.idempotency_claim(idem, offset_ms, status, body)))
