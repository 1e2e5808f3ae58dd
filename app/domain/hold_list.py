"""GET /v1/holds: a caller's holds (admin: every hold), filtered, in pages.

Every hold part is one member of its partition's listing index (lua/includes/hold_index.lua),
written by the script that creates the part: "<owner> <created_at ms, 13 digits> <hold id>".
One owner's holds are one lex range of each index, so a caller's page reads only its own
members; admin reads the whole index, ordered by (owner, created_at, id). A page is merged
from every partition (on a cluster, each partition on its own node) in member order, which is
therefore the listing's stable order; the cursor (`next`, passed back as `after`) is the last
member returned, opaque to clients.

A multi-partition hold is listed once, through its home part's member; with a `sku` filter
only that sku's partition is read, and there the part holding the sku stands for its hold.
Filters other than the owner are applied to the records read (at most SCAN_BUDGET members per
partition per page), so a page may hold fewer than `limit` holds and still have a `next`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any, cast

import orjson
from redis.asyncio import Redis

from app import keys
from app.domain.clock import Clock
from app.domain.errors import HoldNotFound, InvalidRequest
from app.domain.hold_parts import effective_status
from app.domain.holds import ANONYMOUS_OWNER, HoldService
from app.store import calls
from app.store.scripts import Scripts

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
SCAN_BUDGET = 500  # index members read per partition per page when filters skip some
# The reaper's sweep (HoldLister.sweep): partitions per pass, members per partition per pass.
# With the default 1 s pass, every partition is visited every 16 s: about 3,200 members/s.
SWEEP_PARTITIONS = 16
SWEEP_BATCH = 200
_MEMBER = re.compile(r"^([A-Za-z0-9._:-]{0,128}) (\d{13}) ([A-Za-z0-9._:-]{1,128})$")


@dataclass(frozen=True)
class HoldQuery:
    viewer: str | None  # None: every owner (admin)
    reference: str | None = None
    status: str | None = None
    sku: str | None = None
    limit: int = DEFAULT_LIMIT
    after: str | None = None  # a page's `next`


@dataclass
class _Scan:
    """One partition's contribution to a page: matching (member, record) pairs in member
    order, and `frontier`: the last member it read when it stopped before the end of its range
    (None: it read its range to the end)."""

    found: list[tuple[str, dict[str, str]]]
    frontier: str | None


def encode_cursor(member: str) -> str:
    return base64.urlsafe_b64encode(member.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The member a cursor names; a cursor this service did not make is a 422."""
    try:
        member = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        member = ""
    if not _MEMBER.fullmatch(member):
        raise InvalidRequest(
            "`after` is not a cursor this service returned",
            errors=[{"loc": ["query", "after"], "msg": "invalid cursor"}],
        )
    return member


class HoldLister:
    def __init__(self, redis: Redis, scripts: Scripts, holds: HoldService, clock: Clock) -> None:
        self._redis = redis
        self._scripts = scripts
        self._holds = holds
        self._clock = clock
        self._sweep_next = 0  # the next partition the sweep visits
        self._sweep_at: dict[int, str] = {}  # where it stopped in each partition

    async def page(self, q: HoldQuery) -> dict[str, Any]:
        lo, hi = self._range(q)
        partitions = [keys.partition_of(q.sku)] if q.sku else list(range(keys.PARTITIONS))
        # Every partition's first members in one pipeline (on a cluster, one per node): most
        # partitions hold none of a caller's holds, and this costs them one command each.
        batch = min(q.limit + 1, SCAN_BUDGET)
        pipe = self._redis.pipeline(transaction=False)
        for p in partitions:
            pipe.zrangebylex(keys.holds_index(p), lo, hi, start=0, num=batch)
        firsts = await pipe.execute()
        scans = await asyncio.gather(
            *(
                self._scan(p, first, hi, q, batch)
                for p, first in zip(partitions, firsts, strict=True)
                if first
            )
        )
        found = sorted((pair for scan in scans for pair in scan.found), key=lambda x: x[0])
        frontiers = [s.frontier for s in scans if s.frontier is not None]
        cut = min(frontiers) if frontiers else None
        eligible = [pair for pair in found if cut is None or pair[0] <= cut]
        page = eligible[: q.limit]
        views = await asyncio.gather(*(self._view(member, record, q) for member, record in page))
        holds = [hold for hold in views if hold is not None]
        if len(eligible) > q.limit:
            after: str | None = page[-1][0]
        else:
            after = cut
        return {"data": holds, "next": encode_cursor(after) if after else None}

    async def sweep(self) -> int:
        """One step of the reaper's sweep of the listing indexes: the next SWEEP_PARTITIONS
        partitions, up to SWEEP_BATCH members each from where it stopped last, dropping the
        members whose record has gone (hold_index_sweep.lua). Returns how many it dropped."""
        parts = [(self._sweep_next + i) % keys.PARTITIONS for i in range(SWEEP_PARTITIONS)]
        self._sweep_next = (self._sweep_next + SWEEP_PARTITIONS) % keys.PARTITIONS
        pipe = self._redis.pipeline(transaction=False)
        for p in parts:
            lo = f"({self._sweep_at[p]}" if p in self._sweep_at else "-"
            pipe.zrangebylex(keys.holds_index(p), lo, "+", start=0, num=SWEEP_BATCH)
        batches: list[list[str]] = await pipe.execute()
        for p, members in zip(parts, batches, strict=True):
            if len(members) < SWEEP_BATCH:
                self._sweep_at.pop(p, None)  # at its end: start over next time
            else:
                self._sweep_at[p] = members[-1]
        removed = await asyncio.gather(
            *(
                self._scripts.run(calls.hold_index_sweep(p, members))
                for p, members in zip(parts, batches, strict=True)
                if members
            )
        )
        return sum(int(n) for n in removed)

    @staticmethod
    def _range(q: HoldQuery) -> tuple[str, str]:
        """The lex range of index members the query may see, after its cursor."""
        after = decode_cursor(q.after) if q.after else None
        if q.viewer is None:
            return (f"({after}" if after else "-"), "+"
        if after is not None and not after.startswith(f"{q.viewer} "):
            raise InvalidRequest(
                "`after` is not a cursor of your listing",
                errors=[{"loc": ["query", "after"], "msg": "invalid cursor"}],
            )
        # "!" sorts right after the space that ends the owner.
        return (f"({after}" if after else f"[{q.viewer} "), f"({q.viewer}!"

    async def _scan(self, p: int, members: list[str], hi: str, q: HoldQuery, batch: int) -> _Scan:
        """Up to limit + 1 matches in partition `p` (one more than a page: then there is more),
        reading at most SCAN_BUDGET members; `members` are its first `batch`."""
        found: list[tuple[str, dict[str, str]]] = []
        read = 0
        index = keys.holds_index(p)
        while True:
            if not members:
                return _Scan(found, None)
            flats = await self._scripts.run(calls.hold_list(p, members, self._clock.offset_ms()))
            for member, flat in zip(members, flats, strict=True):
                record = dict(zip(flat[::2], flat[1::2], strict=True))
                if record and _matches(p, record, q):
                    found.append((member, record))
                    if len(found) > q.limit:
                        return _Scan(found, member)
            read += len(members)
            if len(members) < batch:
                return _Scan(found, None)
            if read >= SCAN_BUDGET:
                return _Scan(found, members[-1])
            members = cast(
                list[str],
                await self._redis.zrangebylex(index, f"({members[-1]}", hi, start=0, num=batch),
            )

    async def _view(self, member: str, record: dict[str, str], q: HoldQuery) -> Any:
        """The hold as GET /v1/holds/{id} shows it (None: not to be shown after all). A
        one-partition hold is rendered from the record read; a hold in parts is read whole
        (its parts settled first, as a single read does)."""
        hold_id = member.rsplit(" ", 1)[1]
        if "," not in record.get("parts", ""):
            hold = self._holds.render(hold_id, [record])
        else:
            try:
                hold = await self._holds.get(hold_id, q.viewer)
            except HoldNotFound:  # still being reserved, or gone
                return None
            if q.status and hold["status"] != q.status:
                return None
        return hold


def _matches(p: int, record: dict[str, str], q: HoldQuery) -> bool:
    """Does this part stand for a hold the query lists? The owner is the index range's."""
    parts = record.get("parts", "")
    home = parts.split(",")[0]
    if q.sku:
        skus = [line["sku"] for line in _lines(record)]
        if q.sku not in skus:
            return False
    elif home and int(home) != p:
        return False  # listed through its home part
    if record.get("status") == "pending" and not record.get("overdue"):
        return False  # in flight: not a hold yet
    if q.reference is not None and record.get("reference", "") != q.reference:
        return False
    if q.status and "," not in parts and effective_status(record) != q.status:
        return False
    # A defence: the index range is the owner's already.
    return q.viewer is None or record.get("owner", ANONYMOUS_OWNER) == q.viewer


def _lines(record: dict[str, str]) -> list[dict[str, Any]]:
    return list(orjson.loads(record.get("lines") or "[]")) + list(
        orjson.loads(record.get("closed") or "[]")
    )
