"""app/store/calls.py: one builder per script, each laying out KEYS and ARGV as its lua file's
header documents them, and the enums the domain compares replies with."""

from __future__ import annotations

import re
from dataclasses import fields

import pytest

from app import keys
from app.store import calls
from app.store.calls import HoldStatus, Idem, Reply, Script, Transition
from app.store.scripts import Scripts, lua_dir, script_source
from tests.lua.helpers import reserve_call

SKU = "calls-sku"
P = keys.partition_of(SKU)
IDEM = Idem(keys.idempotency(keys.tag(P), "d" * 64), "fp", 1000, 60)


def reserve(idem: Idem | None = None) -> calls.Call:
    return reserve_call(
        partition=P,
        hold_id="h1",
        skus=[SKU],
        lines=[{"s": 1, "q": 2}],
        status=HoldStatus.PENDING,
        pending_ttl_ms=5_000,
        allow_split=True,
        pending_grace_ms=7,
        idem=idem,
    )


def transition(script: Transition, **kw: object) -> calls.Call:
    return calls.transition(
        script,
        partition=P,
        hold_id="h1",
        skus=[SKU],
        retention_ms=1,
        finished_ttl_seconds=2,
        channels=b"{}",
        **kw,  # type: ignore[arg-type]
    )


def test_every_script_has_one_name_in_the_script_enum_the_registry_and_lua() -> None:
    on_disk = {p.stem for p in lua_dir().glob("*.lua")}
    assert {s.value for s in Script} == {f.name for f in fields(Scripts)} == on_disk


def test_every_reply_kind_a_script_header_lists_is_a_reply_member() -> None:
    listed: set[str] = set()
    for script in Script:
        header = script_source(script).split("\nlocal ", 1)[0]
        for block in re.findall(r"Repl(?:y|ies):(.*?)(?:\n--\n|\Z)", header, re.S):
            # a reply opens a line or follows "|": {"kind", ...}, not a JSON value inside one
            listed |= set(re.findall(r'(?:^|\||^--)\s*\{"([a-z_]+)"\s*[,}]', block, re.M))
    assert "insufficient" in listed
    assert listed <= {r.value for r in Reply}


def test_hold_reserve_lays_out_eighteen_argv_then_the_claim() -> None:
    plain, keyed = reserve(), reserve(IDEM)
    assert plain.keys == [
        keys.hold(P, "h1"),
        keys.expiry_index(P),
        keys.events(P),
        *keys.sku_keys(P, SKU),
        keys.holds_index(P),
    ]
    assert len(plain.args) == 18  # the 18th: metadata
    assert plain.args[2] == "pending" and plain.args[8] == "1" and plain.args[16] == 7
    assert keyed.keys == [*plain.keys, IDEM.record]
    assert keyed.args == [*plain.args, "fp", 1000, 60]


def test_a_transition_carries_its_eighth_argv_only_where_the_script_reads_one() -> None:
    assert len(transition(Transition.COMMIT).args) == 7
    assert transition(Transition.EXTEND, ttl_ms=9).args[7] == 9
    assert transition(Transition.ROLLBACK, tombstone=b"{}").args[7] == b"{}"
    with pytest.raises(ValueError):
        transition(Transition.EXTEND)
    with pytest.raises(ValueError):
        transition(Transition.COMMIT, tombstone=b"{}")


def test_a_transition_writes_a_marker_only_with_an_operation_digest() -> None:
    assert transition(Transition.COMMIT, marker_ttl_seconds=60).args[5] == 0
    keyed = transition(Transition.COMMIT, op_digest="abc", marker_ttl_seconds=60)
    assert keyed.args[5] == 60 and keyed.keys[3] == keys.op_marker(P, "abc")


def test_each_transition_names_its_script_and_the_status_it_leaves() -> None:
    assert Transition.COMMIT.script is Script.HOLD_COMMIT
    assert Transition.CONFIRM.target == HoldStatus.ACTIVE
    assert Transition.ROLLBACK.target == HoldStatus.EXPIRED
    assert Transition.ABORT.target is None


def test_argv_is_evalsha_arguments_as_text() -> None:
    argv = calls.availability(P, [SKU], ["dc"]).argv("sha")
    assert argv == [
        "sha",
        "2",
        keys.position(P, SKU),
        keys.hold_line_index(P, SKU),
        "0",
        "0",
        "dc",
    ]


def test_replies_compare_equal_to_what_the_scripts_send() -> None:
    sent: str = "ok"  # what a script's reply decodes to
    assert sent == Reply.OK and Reply("insufficient") is Reply.INSUFFICIENT
