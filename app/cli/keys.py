"""`omnistock keys new|hash`: API keys for OMNISTOCK_API_KEYS_FILE, which holds only hashes.

    KEY=$(omnistock keys new --name web-shop --scope read --scope reserve --file keys.json)

prints the new key once, on stdout (nothing else goes there), and appends its SHA-256 with
the name and scopes to the file. A running service reads the file at start: restart it (one
worker at a time) to add or revoke a key.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from app.credentials import KeysFileError, append, hash_key


def _keys_file(args: argparse.Namespace) -> Path | None:
    value = args.file or os.environ.get("OMNISTOCK_API_KEYS_FILE")
    return Path(value) if value else None


def new(args: argparse.Namespace) -> int:
    path = _keys_file(args)
    if path is None:
        print("omnistock keys new: give --file or set OMNISTOCK_API_KEYS_FILE", file=sys.stderr)
        return 2
    try:
        key = append(path, args.name, args.scope)
    except (KeysFileError, OSError) as exc:
        print(f"omnistock keys new: {exc}", file=sys.stderr)
        return 2
    print(key)
    print(
        f"omnistock: added key {args.name!r} ({', '.join(args.scope)}) to {path}. This is the "
        "only time the key is shown; restart the service to use it.",
        file=sys.stderr,
    )
    return 0


def hash_(args: argparse.Namespace) -> int:
    # `-` reads the key from stdin, keeping it out of the shell history and `ps`.
    key = sys.stdin.readline().strip() if args.key == "-" else args.key
    if not key:
        print("omnistock keys hash: empty key", file=sys.stderr)
        return 2
    print(hash_key(key))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "keys",
        help="create API keys and hash them for OMNISTOCK_API_KEYS_FILE",
        description="API keys for OMNISTOCK_API_KEYS_FILE. The file holds each key's SHA-256, "
        "a name and scopes: read, reserve, pos:<location>, admin.",
    )
    keys_sub = p.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    p_new = keys_sub.add_parser(
        "new",
        help="create a key: print it once, append its hash to the keys file",
        description="Create a random key, print it on stdout (shown only this once) and append "
        "its SHA-256, name and scopes to the keys file (created with mode 0600 if missing).",
    )
    p_new.add_argument("--name", required=True, help="the client: web-shop, store-12-pos, ...")
    p_new.add_argument(
        "--scope",
        action="append",
        required=True,
        help="read, reserve, pos:<location> or admin; repeat for several",
    )
    p_new.add_argument("--file", help="keys file (default: OMNISTOCK_API_KEYS_FILE)")
    p_new.set_defaults(func=new)
    p_hash = keys_sub.add_parser(
        "hash",
        help="print the SHA-256 of a key, for a keys file managed by other tools",
    )
    p_hash.add_argument("key", help="the key, or - to read it from stdin")
    p_hash.set_defaults(func=hash_)
