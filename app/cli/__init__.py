"""`omnistock` command line. Each subcommand lives in its own module with a `register(sub)`.

Exit codes scripts can rely on: 0 success, 1 the command ran and found a problem (e.g. audit
drift, rejected import rows), 2 usage or configuration error, 3 the store is unreachable,
4 partial: done on the nodes reached, the unreachable ones skipped as told (`functions prune
--skip-unreachable`) and named on stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys

from app import __version__
from app.cli import (
    audit,
    backup,
    channels,
    config,
    events,
    export,
    functions,
    import_,
    keys,
    locations,
    serve,
)

COMMANDS = [
    serve,
    import_,
    keys,
    audit,
    export,
    locations,
    channels,
    events,
    config,
    backup,
    functions,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="omnistock",
        description="Real-time inventory availability and reservation service.",
    )
    parser.add_argument("--version", action="version", version=f"omnistock {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
