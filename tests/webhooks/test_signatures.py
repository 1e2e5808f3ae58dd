"""The signature scheme and the receivers' helper (app/webhooks/verify.py)."""

from __future__ import annotations

from app.webhooks.verify import sign, verify

SECRET = "whsec_0123456789abcdef"


def test_verify_accepts_a_fresh_signature_of_the_exact_body() -> None:
    header = sign(SECRET, b'{"a":1}', 1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert verify(SECRET, b'{"a":1}', header, now=1_700_000_010)


def test_verify_refuses_another_body_secret_or_an_old_timestamp() -> None:
    header = sign(SECRET, b'{"a":1}', 1_700_000_000)
    assert not verify(SECRET, b'{"a":2}', header, now=1_700_000_000)
    assert not verify("whsec_another_secret_x", b'{"a":1}', header, now=1_700_000_000)
    assert not verify(SECRET, b'{"a":1}', header, now=1_700_000_000 + 301)
    assert not verify(SECRET, b'{"a":1}', "v1=abc", now=1_700_000_000)
    assert not verify(SECRET, b'{"a":1}', "t=x,v1=abc", now=1_700_000_000)


def test_verify_accepts_any_of_several_v1_signatures_during_a_secret_rotation() -> None:
    header = sign(SECRET, b"{}", 100) + ",v1=" + "0" * 64
    assert verify(SECRET, b"{}", header, now=100)
