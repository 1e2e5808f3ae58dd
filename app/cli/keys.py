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
from collections.abc import Callable
from pathlib import Path

import orjson

from app.cli.common import add_action, command_group
from app.credentials import KeysFileError, append, hash_key, load, revoke


def _on_file(
    action: str, run: Callable[[argparse.Namespace, Path], int]
) -> Callable[[argparse.Namespace], int]:
    """`omnistock keys ACTION` on the keys file (--file or OMNISTOCK_API_KEYS_FILE): no file
    named, or one that cannot be read or written, is exit 2 with the reason."""

    def command(args: argparse.Namespace) -> int:
        value = args.file or os.environ.get("OMNISTOCK_API_KEYS_FILE")
        if not value:
            print(
                f"omnistock keys {action}: give --file or set OMNISTOCK_API_KEYS_FILE",
                file=sys.stderr,
            )
            return 2
        try:
            return run(args, Path(value))
        except (KeysFileError, OSError) as exc:
            print(f"omnistock keys {action}: {exc}", file=sys.stderr)
            return 2

    return command


def _new(args: argparse.Namespace, path: Path) -> int:
    key = append(path, args.name, args.scope)
    print(key)
    print(
        f"omnistock: added key {args.name!r} ({', '.join(args.scope)}) to {path}. This is the "
        "only time the key is shown; a running service picks it up within a second.",
        file=sys.stderr,
    )
    return 0


def _list(args: argparse.Namespace, path: Path) -> int:
    rows = [{"name": k.name, "scopes": sorted(k.scopes)} for k in load(path)]
    if args.json:
        sys.stdout.buffer.write(orjson.dumps({"keys": rows}, option=orjson.OPT_INDENT_2) + b"\n")
        return 0
    width = max((len(row["name"]) for row in rows), default=4)
    print(f"{'NAME':<{width}}  SCOPES")
    for row in rows:
        print(f"{row['name']:<{width}}  {' '.join(row['scopes'])}")
    return 0


def _revoke(args: argparse.Namespace, path: Path) -> int:
    removed = revoke(path, args.name)
    if not removed:
        print(f"omnistock keys revoke: no key named {args.name!r} in {path}", file=sys.stderr)
        return 1
    print(
        f"omnistock: revoked {removed} key(s) named {args.name!r} in {path}; a running service "
        "refuses them within a second.",
        file=sys.stderr,
    )
    return 0


new = _on_file("new", _new)
list_ = _on_file("list", _list)
revoke_ = _on_file("revoke", _revoke)


def hash_(args: argparse.Namespace) -> int:
    # `-` reads the key from stdin, keeping it out of the shell history and `ps`.
    key = sys.stdin.readline().strip() if args.key == "-" else args.key
    if not key:
        print("omnistock keys hash: empty key", file=sys.stderr)
        return 2
    print(hash_key(key))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys_sub = command_group(
        sub,
        "keys",
        help="create API keys and hash them for OMNISTOCK_API_KEYS_FILE",
        description="API keys for OMNISTOCK_API_KEYS_FILE. The file holds each key's SHA-256, "
        "a name and scopes: read, reserve, pos:<location>, admin.",
    )
    p_new = add_action(
        keys_sub,
        "new",
        new,
        "create a key: print it once, append its hash to the keys file",
        "Create a random key, print it on stdout (shown only this once) and append its SHA-256, "
        "name and scopes to the keys file (created with mode 0600 if missing).",
    )
    p_new.add_argument("--name", required=True, help="the client: web-shop, store-12-pos, ...")
    p_new.add_argument(
        "--scope",
        action="append",
        required=True,
        help="read, reserve, pos:<location> or admin; repeat for several",
    )
    p_list = add_action(keys_sub, "list", list_, "the keys' names and scopes (never their hashes)")
    p_list.add_argument("--json", action="store_true", help='{"keys": [{"name", "scopes"}]}')
    p_revoke = add_action(
        keys_sub,
        "revoke",
        revoke_,
        "remove every key of a name from the keys file",
        "Remove every key named NAME (a client mid-rotation has two) from the keys file, "
        "rewritten atomically (mode 0600). A running service refuses them within a second.",
    )
    p_revoke.add_argument("name", help="the client's name, as `keys list` shows it")
    for on_file in (p_new, p_list, p_revoke):
        on_file.add_argument("--file", help="keys file (default: OMNISTOCK_API_KEYS_FILE)")
    p_hash = add_action(
        keys_sub,
        "hash",
        hash_,
        "print the SHA-256 of a key, for a keys file managed by other tools",
    )
    p_hash.add_argument("key", help="the key, or - to read it from stdin")
