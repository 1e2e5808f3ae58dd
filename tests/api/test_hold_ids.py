"""Hold ids keep their format: `_format` is base64.b32encode's first 20 characters."""

from __future__ import annotations

import base64
import os
import random

from app.domain.hold_ids import _format, home_partition, keyed_hold_id, random_hold_id


def _reference(raw: bytes, home: int) -> str:
    """The definition the ids were made by (and keyed ids must still be derived by)."""
    return f"h{base64.b32encode(raw).decode().lower()[:20]}-{home:02x}"


def test_format_is_the_base32_definition() -> None:
    rnd = random.Random(12)
    samples = [bytes(16), b"\xff" * 32, bytes(range(16)), bytes(range(255, 223, -1))]
    samples += [rnd.randbytes(rnd.choice((13, 16, 32))) for _ in range(20_000)]
    for i, raw in enumerate(samples):
        assert _format(raw, i % 256) == _reference(raw, i % 256)


def test_ids_have_the_documented_shape() -> None:
    hold_id = random_hold_id(0xA7)
    assert home_partition(hold_id) == 0xA7
    keyed = keyed_hold_id(os.urandom(32), "owner", "digest", 3)
    assert home_partition(keyed) == 3


def test_a_keyed_id_is_derived_as_before() -> None:
    """A retry after an upgrade must find the hold its first attempt made."""
    import hashlib
    import hmac

    secret = bytes(range(32))
    mac = hmac.new(secret, b"hold\0shop\0abc", hashlib.sha256).digest()
    assert keyed_hold_id(secret, "shop", "abc", 0x1F) == _reference(mac, 0x1F)


def test_a_forked_process_makes_random_hold_ids_of_its_own() -> None:
    random_hold_id(0)  # the parent has bytes in hand
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, then out without pytest's teardown
        os.write(write, random_hold_id(0).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    assert child != random_hold_id(0)  # not the parent's next bytes


def test_keyed_ids_are_the_hmac_of_owner_and_digest_for_any_secret_and_owner() -> None:
    import hashlib
    import hmac

    rnd = random.Random(7)
    for _ in range(2_000):
        secret = rnd.randbytes(rnd.choice((1, 32, 64, 65, 200)))  # longer than a block: hashed
        owner = "".join(rnd.choice("ab-_.é\u4e2d\0") for _ in range(rnd.randrange(0, 12)))
        digest = rnd.randbytes(32).hex()
        mac = hmac.new(secret, f"hold\0{owner}\0{digest}".encode(), hashlib.sha256).digest()
        assert keyed_hold_id(secret, owner, digest, 0x42) == _reference(mac, 0x42)
