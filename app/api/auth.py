"""API key authentication and scopes, as one FastAPI dependency per route.

Each route names the scopes that may call it (`dependencies=[auth.READ]`); `admin` may call
everything. The keys are loaded in create_app and re-read on change or SIGHUP
(app/api/keys_reload.py). Without a keys file there is no
authentication: every caller is the anonymous admin, and `omnistock serve` only binds to
loopback then ("protected mode", app/cli/serve.py).

| scope            | may call                                                              |
| ---------------- | --------------------------------------------------------------------- |
| `read`           | availability, stock and location/channel reads, GET holds, events,   |
|                  | /metrics                                                              |
| `reserve`        | holds: create, commit, fulfil, release, extend, GET                   |
| `pos:<location>` | POST /v1/stock/events, each event for that location only             |
| `admin`          | everything, including PUT locations, channels and stock              |

`/healthz`, `/readyz`, `/docs` and `/openapi.json` are open: they carry no stock data.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from app import credentials
from app.credentials import ApiKey
from app.domain.errors import Forbidden, Unauthorized

# Only for the OpenAPI description (the "Authorize" button of /docs): `presented_key` reads the
# header, and we answer 401 ourselves.
bearer_scheme = HTTPBearer(auto_error=False, description="An API key: `omnistock keys new`")
_MAX_KEY_LENGTH = 512  # ours are 47 characters; anything much longer is not a key


@dataclass(frozen=True)
class Caller:
    name: str  # "" for the anonymous caller of an unauthenticated service
    scopes: frozenset[str]
    pos_location: str | None = None

    def may(self, accepted: tuple[str, ...]) -> bool:
        if "admin" in self.scopes:
            return True
        return any(
            s in self.scopes or (s == "pos:*" and self.pos_location is not None) for s in accepted
        )

    @property
    def only_location(self) -> str | None:
        """The location a POS caller's stock events are limited to (None: any)."""
        return None if "admin" in self.scopes else self.pos_location


ANONYMOUS = Caller("", frozenset({"admin"}))


class KeyRing:
    def __init__(self, entries: list[ApiKey]) -> None:
        self._entries = entries

    @classmethod
    def from_file(cls, path: Path) -> KeyRing:
        return cls(credentials.load(path))

    def __len__(self) -> int:
        return len(self._entries)

    def find(self, key: str) -> ApiKey | None:
        # Why this leaks nothing useful: we compare the SHA-256 of what the caller sent with
        # the stored SHA-256s, never the key itself. Even a comparison whose time depended on
        # the bytes would at most tell an attacker how many leading bytes of the hash of a
        # string *they chose* match a stored hash, and knowing a stored hash, entirely, does
        # not help find a key with that hash (preimage resistance; the keys are 256 random
        # bits). On top of that, hmac.compare_digest takes the same time wherever the first
        # difference is, and the loop visits every entry without stopping at a match, so the
        # time depends only on the number of keys, not on which one matched or how closely.
        presented = hashlib.sha256(key.encode()).digest()
        match: ApiKey | None = None
        for entry in self._entries:
            if hmac.compare_digest(entry.digest, presented):
                match = entry
        return match


def presented_key(request: Request) -> str | None:
    """The key of the request's `Authorization: Bearer <key>` header, split as HTTPBearer
    splits it (FastAPI's get_authorization_scheme_param); None without one. Several
    Authorization headers are refused: HTTPBearer would read the first, a proxy or a log may
    go by another, and RFC 9110 makes a single-valued field sent twice an error."""
    header: bytes | None = None
    for name, value in request.scope["headers"]:
        if name == b"authorization":
            if header is not None:
                raise Unauthorized(
                    "send exactly one Authorization header; this request has several",
                    error="invalid_request",
                )
            header = value
    if header is None:
        return None
    scheme, credentials = get_authorization_scheme_param(header.decode("latin-1"))
    if not (scheme and credentials) or scheme.lower() != "bearer":
        return None
    return credentials


def _authenticate(request: Request) -> Caller:
    keyring: KeyRing | None = request.app.state.keyring
    if keyring is None:
        return ANONYMOUS
    key = presented_key(request)
    if key is None:
        raise Unauthorized("send an API key as `Authorization: Bearer <key>`")
    entry = keyring.find(key) if len(key) <= _MAX_KEY_LENGTH else None
    if entry is None:
        raise Unauthorized("the API key is not valid", error="invalid_token")
    return Caller(entry.name, entry.scopes, entry.pos_location)


@dataclass(frozen=True)
class ScopeRequirement:
    """A route dependency: the caller's key must hold one of `accepted` (or `admin`);
    `pos:*` accepts any POS scope. The caller is kept on request.state for the route.

    A class rather than a closure so that the fast path (app/api/fast_path.py) recognises it
    among a route's dependencies, knows the route's scopes, and runs this very code."""

    accepted: tuple[str, ...]

    async def __call__(
        self,
        request: Request,
        token: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    ) -> Caller:
        # `token` is there for the OpenAPI description only ("Authorize" in /docs):
        # `authorise` reads the header itself, the same on FastAPI's path and the fast path.
        return await self.authorise(request)

    async def authorise(self, request: Request) -> Caller:
        caller = _authenticate(request)
        if not caller.may(self.accepted):
            # dict.fromkeys: in order, once each ("admin" alone, not "admin, admin").
            scopes = (s.replace("pos:*", "pos:<location>") for s in (*self.accepted, "admin"))
            wanted = list(dict.fromkeys(scopes))
            raise Forbidden(
                f"this API key lacks the scope for this operation: one of {', '.join(wanted)}",
                required_scopes=wanted,
            )
        request.state.caller = caller
        return caller


def is_admin(request: Request) -> bool:
    """Whether the request carries a valid admin key (or the service has no keys: loopback
    mode, where every caller is admin). For open routes that show admins more (/readyz)."""
    try:
        return _authenticate(request).may(("admin",))
    except Unauthorized:
        return False


def require(*accepted: str) -> Any:
    """The dependency of a route that `accepted` scopes (and `admin`) may call."""
    return Depends(ScopeRequirement(accepted))


def caller_of(request: Request) -> Caller:
    """The authenticated caller of this request. A route that forgot its auth dependency
    fails here (500) rather than run as anyone: fail closed."""
    caller: Caller | None = getattr(request.state, "caller", None)
    if caller is not None:
        return caller
    if request.app.state.keyring is None:
        return ANONYMOUS
    raise RuntimeError(f"route {request.url.path} has no auth dependency")


def hold_owner(request: Request) -> str:
    """The owner of a hold this request creates: its API key's name ("" without keys). The
    one derivation both paths of POST /v1/holds use (FastAPI's and app/api/fast_path.py's)."""
    return caller_of(request).name


def hold_viewer(request: Request) -> str | None:
    """Whose holds this request may read and change: the caller's own, or every hold (None)
    for `admin` and for the anonymous caller of a service without keys."""
    caller = caller_of(request)
    return None if "admin" in caller.scopes else caller.name


READ = require("read")
RESERVE = require("reserve")
HOLD_READ = require("read", "reserve")
STOCK_EVENTS = require("pos:*")
ADMIN = require("admin")
