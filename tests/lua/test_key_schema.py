"""Every key a script touches shares one hash slot, and every script declares its keys."""

from __future__ import annotations

import re

from redis.crc import key_slot

from app import keys
from app.store.scripts import lua_dir, script_source


def test_every_per_partition_key_shares_the_partition_slot() -> None:
    for p in (0, 7, 255):
        slot = key_slot(keys.tag(p).encode())
        shared = [
            *keys.sku_keys(p, "any-sku"),
            keys.hold(p, "h-1"),
            keys.expiry_index(p),
            keys.events(p),
            keys.skus(p),
            keys.op_marker(p, "d" * 64),
            keys.idempotency(keys.tag(p), "d" * 64),
            keys.event_seen(p, "store-1", "evt-1"),
            keys.event_seen_before_locations(p, "evt-1"),
        ]
        assert {key_slot(k.encode()) for k in shared} == {slot}


def test_a_skus_keys_live_in_the_partition_of_the_sku() -> None:
    for sku in ("A-1", "sku:42", "x" * 128):
        p = keys.partition_of(sku)
        assert keys.position(p, sku).startswith(keys.tag(p))
        assert 0 <= p < keys.PARTITIONS


def test_client_values_cannot_change_a_keys_hash_tag() -> None:
    # Identifiers may not contain braces (contract: A-Z a-z 0-9 . _ : -), and the tag comes
    # first, so the first {...} of every key is always the partition tag.
    sku = "a:b.c_d-e"
    assert key_slot(keys.position(3, sku).encode()) == key_slot(keys.tag(3).encode())


def test_no_script_builds_key_names_from_its_arguments() -> None:
    for path in lua_dir().glob("*.lua"):
        source = script_source(path.stem)
        for call in re.findall(r"rcall\('[A-Z]+',\s*([^,)]+)", source):
            name = call.strip()
            assert ".." not in name and "ARGV" not in name, (path.name, name)


def test_every_script_documents_its_keys_argv_and_replies() -> None:
    for path in lua_dir().glob("*.lua"):
        header = path.read_text().split("local rcall")[0]
        assert re.search(r"KEYS\[[^]]+\]", header) or "KEYS and ARGV" in header, path.name
        assert "ARGV[1]" in header or "KEYS and ARGV" in header, path.name
        assert "Repl" in header, path.name
