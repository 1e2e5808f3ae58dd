"""API keys: the keys file, its validation, and new keys. No web framework in here, so the CLI
(`omnistock keys`, `omnistock serve`) and the HTTP layer (app/api/auth.py) share one reading.

The file (OMNISTOCK_API_KEYS_FILE) holds only the SHA-256 of each key, never the key:

    {"keys": [{"name": "web-shop", "sha256": "<64 hex>", "scopes": ["read", "reserve"]}]}

Keys are 256 random bits, so a plain SHA-256 is enough: a slow, salted hash protects guessable
human passwords, and nobody guesses 2^256. `name` identifies the client (idempotency
namespace, logs); two entries may share a name, which is how a client rotates its key.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from app.domain.models import ID_PATTERN

SCOPES = ("read", "reserve", "admin")
POS_PREFIX = "pos:"
KEY_PREFIX = "osk_"  # recognisable by secret scanners and in a leaked paste
_ID = re.compile(ID_PATTERN)
_HEX = re.compile(r"^[0-9a-f]{64}$")


class KeysFileError(ValueError):
    """The keys file is missing or malformed: the service must not start (fail closed)."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    digest: bytes  # sha256 of the key
    scopes: frozenset[str]

    @property
    def pos_location(self) -> str | None:
        """The one location a `pos:<location>` scope names, if the key has one."""
        for scope in self.scopes:
            if scope.startswith(POS_PREFIX):
                return scope[len(POS_PREFIX) :]
        return None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not _ID.fullmatch(name):
        raise KeysFileError(f"key name {name!r} must be 1-128 characters of A-Z a-z 0-9 . _ : -")
    return name


def check_scopes(scopes: Any) -> frozenset[str]:
    if not isinstance(scopes, list) or not scopes:
        raise KeysFileError("scopes must be a non-empty list")
    for scope in scopes:
        if not isinstance(scope, str):
            raise KeysFileError(f"scope {scope!r} must be a string")
        if scope in SCOPES:
            continue
        if scope.startswith(POS_PREFIX) and _ID.fullmatch(scope[len(POS_PREFIX) :]):
            continue
        raise KeysFileError(f"unknown scope {scope!r}: one of read, reserve, admin, pos:<location>")
    if sum(s.startswith(POS_PREFIX) for s in scopes) > 1:
        # Stock events are checked against one location per key; a till belongs to one store.
        raise KeysFileError("a key holds at most one pos:<location> scope: one key per store")
    return frozenset(scopes)


def _entry(raw: Any, where: str) -> ApiKey:
    if not isinstance(raw, dict) or set(raw) - {"name", "sha256", "scopes"}:
        raise KeysFileError(f"{where}: an entry is {{'name', 'sha256', 'scopes'}}")
    try:
        name = check_name(raw.get("name"))
        digest = raw.get("sha256")
        if not isinstance(digest, str) or not _HEX.match(digest):
            raise KeysFileError("sha256 must be 64 lowercase hex digits (`omnistock keys hash`)")
        return ApiKey(name, bytes.fromhex(digest), check_scopes(raw.get("scopes")))
    except KeysFileError as exc:
        raise KeysFileError(f"{where}: {exc}") from None


def _read(path: Path) -> list[Any]:
    try:
        doc = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise KeysFileError(f"API keys file {path} does not exist") from None
    except (OSError, orjson.JSONDecodeError) as exc:
        raise KeysFileError(f"API keys file {path}: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise KeysFileError(f'API keys file {path}: expected {{"keys": [...]}}')
    entries: list[Any] = doc["keys"]
    return entries


Fingerprint = tuple[int, int, int, int] | None


def fingerprint(path: Path) -> Fingerprint:
    """What tells a changed keys file from the one last read without reading it: device,
    inode, mtime and size (an edit in place, a rename over it, a symlink swap), or None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def load(path: Path) -> list[ApiKey]:
    """Every key of the file, validated. An empty list is valid: every request is then 401."""
    found = [_entry(raw, f"{path}, key #{i + 1}") for i, raw in enumerate(_read(path))]
    digests = [k.digest for k in found]
    if len(set(digests)) != len(digests):
        raise KeysFileError(f"API keys file {path}: the same key appears twice")
    return found


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # The file itself is replaced by a rename, so lock its directory (no stray lock file).
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def append(path: Path, name: str, scopes: list[str]) -> str:
    """Create a key, add its hash to the file (created 0600 if missing); returns the key,
    which exists nowhere else afterwards."""
    check_name(name)
    check_scopes(scopes)
    key = new_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        entries = _read(path) if path.exists() else []
        if path.exists():
            load(path)  # never add to a file the service would refuse
        entries.append({"name": name, "sha256": hash_key(key), "scopes": list(scopes)})
        _write(path, entries)
    return key


def revoke(path: Path, name: str) -> int:
    """Remove every key named `name` (a client mid-rotation has two); returns how many."""
    with _locked(path):
        load(path)  # never rewrite a file the service would refuse
        entries = _read(path)
        kept = [raw for raw in entries if raw.get("name") != name]
        if len(kept) != len(entries):
            _write(path, kept)
    return len(entries) - len(kept)


def _write(path: Path, entries: list[Any]) -> None:
    # A sibling file (mkstemp: mode 0600), fsynced, renamed over the old one, and the directory
    # fsynced: a reader or a crash sees the old file or the new one, never half of one.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(orjson.dumps({"keys": entries}, option=orjson.OPT_INDENT_2) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
