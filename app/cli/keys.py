"""`omnistock keys new|hash`: API keys for OMNISTOCK_API_KEYS_FILE, which holds only hashes.

    KEY=$(omnistock keys new --name web-shop --scope read --scope reserve --file keys.json)

prints the new key once, on stdout (nothing else goes there), and appends its SHA-256 with
the name and scopes to the file. A running service re-reads the file within a second of a
change (or at once on SIGHUP): no restart to add or revoke a key.

    omnistock keys list [--json]      names and scopes (never a hash)
    omnistock keys revoke web-shop    removes every key of that name
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import orjson

from app.credentials import KeysFileError, append, hash_key, load, revoke


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
        "only time the key is shown; a running service picks it up within a second.",
        file=sys.stderr,
    )
    return 0


def list_(args: argparse.Namespace) -> int:
    path = _keys_file(args)
    if path is None:
        print("omnistock keys list: give --file or set OMNISTOCK_API_KEYS_FILE", file=sys.stderr)
        return 2
    try:
        keys = load(path)
    except KeysFileError as exc:
        print(f"omnistock keys list: {exc}", file=sys.stderr)
        return 2
    rows = [{"name": k.name, "scopes": sorted(k.scopes)} for k in keys]
    if args.json:
        sys.stdout.buffer.write(orjson.dumps({"keys": rows}, option=orjson.OPT_INDENT_2) + b"\n")
        return 0
    width = max((len(row["name"]) for row in rows), default=4)
    print(f"{'NAME':<{width}}  SCOPES")
    for row in rows:
        print(f"{row['name']:<{width}}  {' '.join(row['scopes'])}")
    return 0


def revoke_(args: argparse.Namespace) -> int:
    path = _keys_file(args)
    if path is None:
        print("omnistock keys revoke: give --file or set OMNISTOCK_API_KEYS_FILE", file=sys.stderr)
        return 2
    try:
        removed = revoke(path, args.name)
    except (KeysFileError, OSError) as exc:
        print(f"omnistock keys revoke: {exc}", file=sys.stderr)
        return 2
    if not removed:
        print(f"omnistock keys revoke: no key named {args.name!r} in {path}", file=sys.stderr)
        return 1
    print(
        f"omnistock: revoked {removed} key(s) named {args.name!r} in {path}; a running service "
        "refuses them within a second.",
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
    p_list = keys_sub.add_parser(
        "list",
        help="the keys' names and scopes (never their hashes)",
        description="List the keys of the keys file: name and scopes, one line each.",
    )
    p_list.add_argument("--json", action="store_true", help='{"keys": [{"name", "scopes"}]}')
    p_list.add_argument("--file", help="keys file (default: OMNISTOCK_API_KEYS_FILE)")
    p_list.set_defaults(func=list_)
    p_revoke = keys_sub.add_parser(
        "revoke",
        help="remove every key of a name from the keys file",
        description="Remove every key named NAME (a client mid-rotation has two) from the keys "
        "file, rewritten atomically (mode 0600). A running service refuses them within a second.",
    )
    p_revoke.add_argument("name", help="the client's name, as `keys list` shows it")
    p_revoke.add_argument("--file", help="keys file (default: OMNISTOCK_API_KEYS_FILE)")
    p_revoke.set_defaults(func=revoke_)
    p_hash = keys_sub.add_parser(
        "hash",
        help="print the SHA-256 of a key, for a keys file managed by other tools",
    )
    p_hash.add_argument("key", help="the key, or - to read it from stdin")
    p_hash.set_defaults(func=hash_)
