"""The hold scripts as they are now against the same scripts at a pinned revision, on the same
random operations (benchmarks/hold_equivalence.py, small size): every reply and every key's
contents must match. The reference is `lua/` at REFERENCE, read with `git show`: the scripts
before "one home per rule" (6371ada: the available rule, the event record and the line
member written inline in each script, emit.lua's own event writer) and before every later
speed change, so the two sides are different code with the same contract. A change that is
meant to change behaviour moves REFERENCE to a revision that has it (and says why).

One output is newer than the reference and left out of the store comparison, by name: the
holds listing index (`keys.holds_index`, written by hold_reserve.lua since 944275b; the
listing's own tests cover it). hold_lines.lua (partial release and fulfil) is newer too and
not in the walk. Everything else the reference writes must be written alike.

One output is kept in another shape: the reference keeps a sku's hold lines in two sorted sets
(`hx:<sku>`, active lines by expiry, and `ho:<sku>`, open lines by creation order), the current
scripts in one (`hx:<sku>`, the order in the member, committed lines scored +inf). The walk
gives the reference its key layout (each `ho` key after its `hx` key) and compares both as one
view, per sku the open lines newest first, each counting or committed
(benchmarks/hold_equivalence.py `line_view`, whose docstring has the mapping); the mutants
below show the view catches a committed line scored as counting and a lost creation order.

Clock boundaries are avoided by construction, not tolerated: the steps move the clock offset
in whole hours and every TTL, lease and deadline is a multiple of half an hour (the module's
docstring), so no decision depends on the milliseconds between the two stores' calls.

The reference runs by EVALSHA; the current scripts run as the service runs them, each a
function library called by FCALL (app/store/functions.py), so the walk also checks that the
library's per-call state (the Idempotency-Key claim read from KEYS/ARGV, the transition's
context) never leaks from one call into the next. Each side runs on its own store, whose
`INFO commandstats` (reset before the walk) proves it: every step's call counted once, by
EVALSHA on the reference's store and by FCALL on the current one's, nothing else."""

from __future__ import annotations

import subprocess

import pytest

from app import keys
from app.store.scripts import Expanded
from benchmarks import harness
from benchmarks.hold_equivalence import SCRIPT_COMMANDS, SCRIPTS, Divergence, P, compare
from benchmarks.lua_micro import variant_expanded, variant_sources

pytestmark = pytest.mark.slow

REFERENCE = "85701722c454e9cac32f953f086f2d8e60fd9b69"
OPS = 2000
NEWER = frozenset({keys.holds_index(P)})  # outputs the reference predates (docstring)


@pytest.fixture(scope="module")
def reference() -> dict[str, str]:
    found = subprocess.run(
        ["git", "cat-file", "-e", f"{REFERENCE}^{{commit}}"], cwd=harness.ROOT, check=False
    )
    if found.returncode != 0:
        pytest.fail(f"needs the git history with {REFERENCE} (git fetch --unshallow)")
    return variant_sources(f"git:{REFERENCE}", SCRIPTS)


@pytest.fixture(scope="module")
def current() -> dict[str, Expanded]:
    """The scripts as they are now, run as the service runs them: function libraries."""
    return variant_expanded("work", SCRIPTS)


def test_the_reference_is_different_code(
    reference: dict[str, str], current: dict[str, Expanded]
) -> None:
    differ = [name for name in SCRIPTS if reference[name] != current[name].text]
    assert "hold_reserve" in differ and "hold_commit" in differ, differ


def test_the_hold_scripts_do_what_the_reference_does_on_random_operations(
    reference: dict[str, str], current: dict[str, Expanded]
) -> None:
    outcome = compare(reference, current, OPS, seed=12, ignore=NEWER)
    kinds = outcome.kinds
    # each side ran what it claims, every step's call once on its own store
    steps = sum(kinds.values())
    assert outcome.commands == {"old": only("evalsha", steps), "new": only("fcall", steps)}
    # the run reached every outcome that matters, so the equality above says something
    for kind in (
        "hold_reserve:ok",
        "hold_reserve:insufficient",
        "hold_reserve:exists",
        "hold_reserve:idem-done",
        "hold_reserve:idem-reused",
        "idempotency_complete:stored",
        "hold_commit:ok",
        "hold_release:ok",
        "hold_expire:expired",
        "stock_set:ok",
    ):
        assert kinds[kind] > 0, (kind, dict(kinds))


def only(command: str, calls: int) -> dict[str, int]:
    """Script commands ({command: calls}, as compare() counts them) where `command` ran
    `calls` times and no other one ran."""
    return {c: calls if c == command else 0 for c in SCRIPT_COMMANDS}


def test_a_change_of_the_availability_rule_is_caught(current: dict[str, Expanded]) -> None:
    # lapsed hold lines forgotten: the kind of slip a faster rewrite could make
    rule = "on_hand - (held - lapsed) - committed - safety"
    assert rule in current["hold_reserve"].text
    mutant = {
        name: Expanded(e.text.replace(rule, "on_hand - held - committed - safety"), e.origins)
        for name, e in current.items()
    }
    with pytest.raises(Divergence):
        compare(current, mutant, OPS, seed=12, ignore=NEWER)


def mutate(current: dict[str, Expanded], old: str, new: str) -> dict[str, Expanded]:
    """Every script with `old` (which must occur) replaced by `new`."""
    assert any(old in e.text for e in current.values()), old
    return {name: Expanded(e.text.replace(old, new), e.origins) for name, e in current.items()}


def test_a_committed_line_left_counting_is_caught(current: dict[str, Expanded]) -> None:
    # commit keeps the line's count_until score instead of +inf: it would lapse
    mutant = mutate(
        current,
        "rcall('ZADD', k[2], 'XX', LINE_COMMITTED, member)",
        "rcall('ZSCORE', k[2], member)",
    )
    # by the view, or sooner by a reply: the committed units lapse with the hold's count_until
    with pytest.raises(Divergence):
        compare(current, mutant, OPS, seed=12, ignore=NEWER)


def test_a_lost_creation_order_is_caught(current: dict[str, Expanded]) -> None:
    # every line made at the same order: the shortfall would walk holds by id, not by age
    mutant = mutate(
        current,
        "local order = line_order(event_id)",
        "local order = '1000000000000000'",
    )
    with pytest.raises(Divergence, match=r"stores differ at .*:hx:"):
        compare(current, mutant, OPS, seed=12, ignore=NEWER)


def test_a_shortfall_naming_holds_oldest_first_is_caught(current: dict[str, Expanded]) -> None:
    # the walk's stock_set shortfalls name holds: their order is compared in the events
    mutant = mutate(
        current,
        "table.sort(members, function(a, b) return a > b end)",
        "table.sort(members, function(a, b) return a < b end)",
    )
    with pytest.raises(Divergence, match=r"stores differ at .*:events"):
        compare(current, mutant, OPS, seed=12, ignore=NEWER)
