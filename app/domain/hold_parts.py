"""The rule that settles a multi-partition hold: its HOME part (the partition the hold id names,
first in every part's `parts`) decides, every other part follows.

The decision is the home part's status, set by one script on the home part's slot and by its
clock: `hold_confirm.lua` makes it `active` only before the home part's pending deadline;
`hold_rollback.lua` makes it `expired` only after it (or writes an `expired` tombstone where no
home part exists). Both are atomic on one slot, so exactly one of them ever succeeds. No
decision needs two slots in one script.

Every other part then moves to the home part's status by the transitions in `settle_path`:
forward (confirm, then commit, fulfil or release as home did) or back (roll back). A pending
part's lines keep counting past its deadline, until its deadline + the pending grace
(`count_until`), so moving it forward never needs units that were given away meanwhile.
Anyone may settle at any time (the coordinator, a retried create, a read, a transition, the
reaper, the audit): each step is a script that re-checks the status, and a step that finds its
part already moved is a no-op.

Pure: no store. HoldService.settle applies it; the audit uses it to tell what it can repair.
"""

from __future__ import annotations

from app.store.calls import HoldStatus as S
from app.store.calls import Transition as T

# (part status, home status) -> the transitions that bring the part to home's status.
_PATHS: dict[tuple[str, str], tuple[T, ...]] = {
    (S.PENDING, S.ACTIVE): (T.CONFIRM,),
    (S.PENDING, S.COMMITTED): (T.CONFIRM, T.COMMIT),
    (S.PENDING, S.FULFILLED): (T.CONFIRM, T.COMMIT, T.FULFIL),
    (S.PENDING, S.RELEASED): (T.CONFIRM, T.RELEASE),
    (S.PENDING, S.EXPIRED): (T.ROLLBACK,),
    (S.ACTIVE, S.COMMITTED): (T.COMMIT,),
    (S.ACTIVE, S.FULFILLED): (T.COMMIT, T.FULFIL),
    (S.ACTIVE, S.RELEASED): (T.RELEASE,),
    (S.ACTIVE, S.EXPIRED): (T.ROLLBACK,),
    (S.COMMITTED, S.FULFILLED): (T.FULFIL,),
    (S.COMMITTED, S.RELEASED): (T.RELEASE,),
}

DECIDED = frozenset({S.ACTIVE, S.COMMITTED, S.FULFILLED, S.RELEASED, S.EXPIRED})


def effective_status(record: dict[str, str]) -> str:
    """A part's status by the store's clock ("" for a missing part): an active or pending part
    whose lines stopped counting (hold_read.lua's "lapsed") is expired, whatever the reaper
    has marked yet."""
    if not record:
        return ""
    return S.EXPIRED if record.get("lapsed") else record.get("status", "")


def settle_path(part: dict[str, str], home_status: str) -> tuple[T, ...]:
    """The transitions that move `part` to `home_status` (empty: nothing to do, or nothing that
    can be done, e.g. a missing part or a committed part of an expired home)."""
    return _PATHS.get((effective_status(part), home_status), ())


def needs_home_decision(home: dict[str, str], parts: list[dict[str, str]]) -> bool:
    """Should the home part be rolled back now? When it is still pending past its deadline, or
    it does not exist while some other part is pending past its own."""
    if home:
        return home.get("status") == S.PENDING and bool(home.get("overdue"))
    return any(p.get("status") == S.PENDING and p.get("overdue") for p in parts)


def unsettled(records: list[dict[str, str]]) -> bool:
    """Is there anything to settle? `records`: every part, home first ({} where missing)."""
    home, rest = records[0], records[1:]
    if needs_home_decision(home, rest):
        return True
    status = effective_status(home)
    return status in DECIDED and any(settle_path(r, status) for r in rest)
