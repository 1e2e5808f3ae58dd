"""Idempotency-Key handling for every mutating endpoint (Stripe's semantics).

1. Claim: the key's record lives in the slot of the change it guards and is claimed by that
   change's own script (app/domain/idempotency.py, lua/includes/idempotency.lua): a finished
   request's stored response is replayed, a different request under the same key is 422
   `idempotency_key_reused`, a request still running is 409 `idempotency_key_in_use`.
   The operation's script writes the change in the same atomic step, with an operation
   marker (or, for a hold, the hold id derived from the key).
2. Complete: store the response in the same record (`idempotency_complete.lua`, same slot),
   unless the change's script stored it with the change (a created hold: `Claim.stored`, one
   store round trip for a keyed create).

A failover keeps or loses the record together with the change (one slot, one replication
stream). If the process dies between 1 and 2, the claim's lease runs out, a retry runs the
operation again, and the operation's script finds its marker and changes nothing: never
applied twice. An error answered before the change's script ran (404 of an unknown location
or hold) is claimed and stored in one step in the slot the domain named.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from fastapi import Request
from fastapi.responses import Response
from redis.exceptions import RedisError

from app.api.auth import caller_of
from app.api.headers import header
from app.api.problems import PROBLEM_JSON, domain_problem
from app.domain.clock import Clock
from app.domain.errors import (
    DomainError,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InvalidRequest,
)
from app.domain.idempotency import Claim, StoredResponse, take
from app.settings import Settings
from app.store import calls
from app.store.scripts import Scripts

HEADER = "Idempotency-Key"
Operation = Callable[[Claim | None], Awaitable[tuple[int, object]]]


def _canonical(body: bytes) -> bytes:
    """The body as sorted-key JSON, so a retry that serialises the same request differently
    (key order, whitespace) is still recognised as the same request."""
    try:
        return orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        return body


def _valid_key(key: str) -> bool:
    """1-255 visible ASCII characters (33-126): ASCII, printable (32-126), no space."""
    return 1 <= len(key) <= 255 and key.isascii() and key.isprintable() and " " not in key


# A path Starlette's `request.url.path` gives back unchanged: one "/" then characters URL
# parsing neither escapes, splits on nor drops ("?", "#", "\\", tab, CR, LF; a leading "//").
_PLAIN_PATH = re.compile(r"/(?:[A-Za-z0-9._~!$&'()*+,;=:@%-][A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?")


def _target(request: Request) -> str:
    """The request's path, and its query where there is one (redeliver's `from`), as the
    fingerprint names them: `request.url`'s, taken straight from the scope for a plain path
    without a query (what building the URL gives there, at a tenth of its cost)."""
    scope = request.scope
    path: str = scope["path"]
    if not scope.get("query_string") and _PLAIN_PATH.fullmatch(path):
        return path
    url = request.url
    return url.path + (f"?{url.query}" if url.query else "")


@dataclass
class Idempotency:
    scripts: Scripts
    settings: Settings
    clock: Clock

    async def run(self, request: Request, operation: Operation, scope: str = "") -> Response:
        """Run `operation(claim)` -> (status, body) under the request's Idempotency-Key; the
        operation hands the claim to the script of its change."""
        key = header(request.scope, HEADER)
        if key is None:
            return _json(*await operation(None))
        if not _valid_key(key):
            raise InvalidRequest(
                "Idempotency-Key must be 1-255 visible ASCII characters",
                errors=[{"loc": ["header", HEADER], "msg": "invalid idempotency key"}],
            )
        # Keys are per client: two API keys sending the same Idempotency-Key never share a
        # record (nor a hold id derived from it). The anonymous caller of a service without
        # API keys keeps the bare scope, so records written before keys were set still match.
        caller = caller_of(request).name
        namespace = f"key:{caller}\0{scope}" if caller else scope
        digest = hashlib.sha256(f"{namespace}\0{key}".encode()).hexdigest()
        fingerprint = hashlib.sha256(
            request.method.encode()
            + b" "
            + _target(request).encode()
            + b"\0"
            + _canonical(await request.body())
        ).hexdigest()
        claim = Claim(
            key=key,
            digest=digest,
            fingerprint=fingerprint,
            lease_ms=self.settings.idempotency_lease_seconds * 1000,
            ttl_seconds=self.settings.idempotency_ttl_seconds,
        )
        try:
            return await self._claimed(claim, operation)
        except StoredResponse as stored:
            media = PROBLEM_JSON if stored.status >= 400 else "application/json"
            return Response(
                stored.body,
                status_code=stored.status,
                media_type=media,
                headers={"Idempotent-Replayed": "true"},
            )

    async def answer(
        self, request: Request, change: Callable[[Claim | None], Awaitable[object]]
    ) -> Response:
        """200 with what `change(claim)` returns, under the request's Idempotency-Key."""

        async def operation(claim: Claim | None) -> tuple[int, object]:
            return 200, await change(claim)

        return await self.run(request, operation)

    async def _claimed(self, claim: Claim, operation: Operation) -> Response:
        """Run the operation, which claims the key in its change's script, and complete the
        claim (store the response, or give the claim up) in the same slot."""

        async def complete(status: str, body: bytes) -> None:
            if claim.taken and not claim.stored:
                await self.scripts.run(calls.idempotency_complete(claim.idem(), status, body))

        try:
            status, body = await operation(claim)
        except (IdempotencyKeyReused, IdempotencyKeyInUse):
            raise  # the claim's own answer: the record is another attempt's
        except DomainError as exc:
            if exc.status >= 500:
                await _quietly(complete("", b""))
                raise
            response = domain_problem(exc)
            if claim.taken:
                await complete(str(response.status_code), bytes(response.body))
            elif claim.slot is not None:
                # Refused before the change's script ran: claim and store in one step, unless
                # an earlier attempt under this key already answered (then that is replayed).
                await take(
                    self.scripts,
                    claim,
                    claim.slot,
                    self.clock.offset_ms(),
                    (str(response.status_code), bytes(response.body)),
                )
            return response
        except RedisError:
            # The outcome is unknown; the marker written with any change makes a retry safe.
            await _quietly(complete("", b""))
            raise
        response = _json(status, body)
        await complete(str(status), bytes(response.body))
        return response


def _json(status: int, body: object) -> Response:
    """The operation's answer; a 204 has no content."""
    payload = b"" if status == 204 else orjson.dumps(body)
    return Response(payload, status_code=status, media_type="application/json")


async def _quietly(action: Awaitable[None]) -> None:
    with contextlib.suppress(RedisError):  # the claim's lease runs out on its own
        await action
