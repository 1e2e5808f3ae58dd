"""Webhook signatures, Stripe-style: `Omnistock-Signature: t=<unix seconds>,v1=<hex>`, where
v1 = HMAC-SHA256(secret, f"{t}.{raw body}"). The timestamp is signed with the body, so a
receiver that rejects old timestamps also rejects replays. Standard library only: receivers
may copy this file as it is.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "Omnistock-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The header value for `body` sent at `timestamp` (unix seconds)."""
    mac = hmac.new(secret.encode(), b"%d." % timestamp + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(
    secret: str,
    body: bytes,
    header: str,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Whether `header` (the Omnistock-Signature value) signs the raw `body` with `secret`
    and its timestamp is within `tolerance_seconds` of `now`. Pass the body's bytes exactly
    as received, before any JSON parsing."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            fields.setdefault(name, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        return False
    expected = sign(secret, body, timestamp).rpartition("v1=")[2]
    return any(hmac.compare_digest(expected, v) for v in fields.get("v1", []))
