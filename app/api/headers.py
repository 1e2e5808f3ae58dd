"""A request header read straight from the ASGI scope.

`header(scope, name)` is Starlette's `Headers(scope=scope).get(name)`: the first header of that
name, decoded as latin-1. Without building the Headers object and its Mapping `get`, which
raises and catches a KeyError when the header is absent: 8-11k instructions a look-up against
about 1k (docs/benchmarks.md, "Session 8, the hold's Python"). For the hot path's look-ups
(the fast path's Content-Type, the Idempotency-Key); tests/api/test_headers.py compares it
with Starlette's.
"""

from __future__ import annotations

from starlette.types import Scope


def header(scope: Scope, name: str) -> str | None:
    """The request's first `name` header (any case), or None."""
    wanted = name.lower().encode("latin-1")
    for key, value in scope["headers"]:
        if key == wanted:
            return str(value.decode("latin-1"))
    return None
