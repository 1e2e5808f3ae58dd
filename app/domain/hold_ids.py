"""Hold ids nobody can guess from public data: `h<20 base32 chars>-<home partition in hex>`.

The 20 characters are 100 bits of either
- os.urandom, for a create without an Idempotency-Key, or
- HMAC-SHA256 under the store's hold-id secret over (owner, Idempotency-Key digest), for a
  keyed create, so a retry finds the hold its first attempt made. Knowing the Idempotency-Key
  (or the owner's name) never gives the id offline: that takes the secret, which lives only in
  the store (`os:{cfg}:hold_id_secret`, 256 random bits created once with SET NX, so every
  process and host of one store derives the same ids; another store has another secret).

Ids made before this scheme (a plain SHA-256 of the Idempotency-Key digest) keep the same
shape and stay valid: a hold is found by its id, never re-derived.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from typing import cast

from redis.asyncio import Redis

from app import keys

_HOLD_ID = re.compile(r"^h[a-z2-7]{20}-([0-9a-f]{2})$")


class _RandomBytes:
    """os.urandom in 4 KiB reads handed out 16 bytes at a time: the same randomness without a
    getrandom syscall per hold. A forked child never reuses its parent's bytes: it forgets
    them at the fork (not by a getpid system call per hold)."""

    def __init__(self) -> None:
        self._buffer = b""
        self._at = 0
        os.register_at_fork(after_in_child=self.forget)

    def forget(self) -> None:
        self._buffer, self._at = b"", 0

    def take(self, n: int) -> bytes:
        if self._at + n > len(self._buffer):
            self._buffer, self._at = secrets.token_bytes(4096), 0
        chunk = self._buffer[self._at : self._at + n]
        self._at += n
        return chunk


_random = _RandomBytes()


# Every pair of base32 characters (RFC 4648's alphabet, lower case), indexed by its 10 bits.
_B32 = "abcdefghijklmnopqrstuvwxyz234567"
_PAIRS = tuple(a + b for a in _B32 for b in _B32)


def _format(raw: bytes, home: int) -> str:
    """`h`, the first 20 characters of `base64.b32encode(raw)` in lower case (the first 100
    bits of `raw`, 5 a character, most significant first), `-` and the home partition in
    hex. Ten look-ups of 10 bits each: base64.b32encode is pure Python in 3.11, about 4
    times as long (tests/api/test_hold_ids.py checks the two agree)."""
    n = int.from_bytes(raw[:13], "big") >> 4
    p = _PAIRS
    return (
        f"h{p[n >> 90]}{p[n >> 80 & 1023]}{p[n >> 70 & 1023]}{p[n >> 60 & 1023]}"
        f"{p[n >> 50 & 1023]}{p[n >> 40 & 1023]}{p[n >> 30 & 1023]}{p[n >> 20 & 1023]}"
        f"{p[n >> 10 & 1023]}{p[n & 1023]}-{home:02x}"
    )


def random_hold_id(home: int) -> str:
    return _format(_random.take(16), home)


_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


class _Mac:
    """HMAC-SHA256 under one key, as RFC 2104 defines it (and `hmac.new(key, msg,
    hashlib.sha256).digest()` computes it), with the padded key's two hash states made once:
    a MAC is then two copies and updates, about half the instructions of `hmac.new`, which
    sets OpenSSL's HMAC up again on every call."""

    def __init__(self, key: bytes) -> None:
        if len(key) > 64:  # SHA-256's block
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def digest(self, msg: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(msg)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


_macs: dict[bytes, _Mac] = {}  # by secret: one per store a process talks to


def keyed_hold_id(secret: bytes, owner: str, op_digest: str, home: int) -> str:
    """The id of the hold a create with this owner and Idempotency-Key digest makes. The
    owner is in the MAC (not only in the digest), so two owners never derive one id."""
    mac = _macs.get(secret)
    if mac is None:
        if len(_macs) >= 8:
            _macs.clear()
        mac = _macs[secret] = _Mac(secret)
    return _format(mac.digest(f"hold\0{owner}\0{op_digest}".encode()), home)


def home_partition(hold_id: str) -> int | None:
    match = _HOLD_ID.match(hold_id)
    return int(match.group(1), 16) if match else None


class HoldIdSecret:
    """The store's hold-id secret, read once per process (at start-up, or at the first keyed
    create if the store was not reachable then)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._secret: bytes | None = None

    async def get(self) -> bytes:
        if self._secret is None:
            fresh = secrets.token_hex(32)
            # One command: create it if absent, and learn the one that won (SET NX GET).
            kept = cast(
                str | bytes | None,
                await self._redis.set(keys.HOLD_ID_SECRET, fresh, nx=True, get=True),
            )
            value = fresh if kept is None else kept
            self._secret = bytes.fromhex(value.decode() if isinstance(value, bytes) else value)
        return self._secret
