"""Idempotency-Key handling for every mutating endpoint (Stripe's semantics).

1. Claim the key in its own record (`idempotency_claim.lua`): a finished request's stored
   response is replayed, a different request under the same key is 422
   `idempotency_key_reused`, a request still running is 409 `idempotency_key_in_use`.
2. Run the operation. Its script also writes an operation marker (or, for a hold, the hold id
   derived from the key) in the same atomic step as the change, in the change's own slot.
3. Store the response (`idempotency_complete.lua`).

If the process dies between 2 and 3, the claim's lease runs out, a retry runs the operation
again, and the operation's script finds its marker and changes nothing: never applied twice.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from fastapi import Request
from fastapi.responses import Response
from redis.exceptions import RedisError

from app import keys
from app.api.auth import caller_of
from app.api.problems import PROBLEM_JSON, domain_problem
from app.domain.clock import Clock
from app.domain.errors import (
    DomainError,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InvalidRequest,
)
from app.settings import Settings
from app.store.scripts import Scripts

HEADER = "Idempotency-Key"
Operation = Callable[[str | None], Awaitable[tuple[int, object]]]


def _canonical(body: bytes) -> bytes:
    """The body as sorted-key JSON, so a retry that serialises the same request differently
    (key order, whitespace) is still recognised as the same request."""
    try:
        return orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        return body


def _valid_key(key: str) -> bool:
    return 1 <= len(key) <= 255 and all(33 <= ord(c) <= 126 for c in key)


@dataclass
class Idempotency:
    scripts: Scripts
    settings: Settings
    clock: Clock

    async def run(self, request: Request, operation: Operation, scope: str = "") -> Response:
        """Run `operation(op_digest)` -> (status, body) under the request's Idempotency-Key."""
        key = request.headers.get(HEADER)
        if key is None:
            status, body = await operation(None)
            return Response(orjson.dumps(body), status_code=status, media_type="application/json")
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
            + request.url.path.encode()
            + b"\0"
            + _canonical(await request.body())
        ).hexdigest()
        record = keys.idempotency(digest)
        ttl = self.settings.idempotency_ttl_seconds
        claim = await self.scripts.idempotency_claim(
            keys=[record],
            args=[
                fingerprint,
                self.clock.offset_ms(),  # the lease runs on the store's clock
                self.settings.idempotency_lease_seconds * 1000,
                ttl,
            ],
        )
        if claim[0] == "reused":
            raise IdempotencyKeyReused(f"Idempotency-Key {key!r} was used for a different request")
        if claim[0] == "in_use":
            raise IdempotencyKeyInUse(f"a request with Idempotency-Key {key!r} is still running")
        if claim[0] == "done":
            stored_status = int(claim[1])
            media = PROBLEM_JSON if stored_status >= 400 else "application/json"
            return Response(
                claim[2],
                status_code=stored_status,
                media_type=media,
                headers={"Idempotent-Replayed": "true"},
            )

        async def complete(status: str, body: bytes) -> None:
            await self.scripts.idempotency_complete(
                keys=[record], args=[fingerprint, status, body, ttl]
            )

        try:
            status, body = await operation(digest)
        except DomainError as exc:
            if exc.status >= 500:
                await _quietly(complete("", b""))
                raise
            response = domain_problem(exc)
            await complete(str(response.status_code), bytes(response.body))
            return response
        except RedisError:
            # The outcome is unknown; the marker written with any change makes a retry safe.
            await _quietly(complete("", b""))
            raise
        payload = orjson.dumps(body)
        await complete(str(status), payload)
        return Response(payload, status_code=status, media_type="application/json")


async def _quietly(action: Awaitable[None]) -> None:
    with contextlib.suppress(RedisError):  # the claim's lease runs out on its own
        await action
