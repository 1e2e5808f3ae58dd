"""`omnistock export`: every position out of the store, as NDJSON or CSV, streamed.

Reads partition by partition (the skus of each from its `skus` set, then their positions in
batches, each batch one atomic script call with expired holds already not counting), so
memory stays flat for any catalogue and a partition's rows come out sorted by sku. The whole
file is not one point in time: each batch is. `--for-import` writes the columns `omnistock
import` reads (sku, location, on_hand, safety_stock), so a store can be copied to another.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import IO, Any

import orjson

from app import keys
from app.cli.common import (
    USAGE,
    CliError,
    Progress,
    add_store_flags,
    open_store,
    run_command,
    store_settings,
)
from app.domain.clock import StoreClock
from app.domain.config import ConfigService
from app.domain.stock import StockService
from app.store.scripts import Scripts

COLUMNS = ["sku", "location", "on_hand", "held", "committed", "safety_stock", "available"]
IMPORT_COLUMNS = ["sku", "location", "on_hand", "safety_stock"]
BATCH_SKUS = 500


class Writer:
    def __init__(self, out: IO[bytes], fmt: str, columns: list[str]) -> None:
        self._out = out
        self._fmt = fmt
        self._columns = columns
        if fmt == "csv":
            out.write(",".join(columns).encode() + b"\n")

    def write(self, row: dict[str, Any]) -> None:
        if self._fmt == "csv":
            # Identifiers are [A-Za-z0-9._:-] and counters integers: nothing to quote.
            self._out.write(",".join(str(row[c]) for c in self._columns).encode() + b"\n")
        else:
            self._out.write(orjson.dumps({c: row[c] for c in self._columns}) + b"\n")


async def _export(args: argparse.Namespace, writer: Writer) -> tuple[int, int]:
    settings = store_settings(args)
    partitions = args.partition or list(range(keys.PARTITIONS))
    wanted = set(args.location) if args.location else None
    progress = Progress("export", "positions", not args.quiet)
    skus_seen = positions = 0
    async with open_store(settings) as redis:
        scripts = Scripts.register(redis)
        config = ConfigService(redis, scripts, settings.config_refresh_seconds)
        stock = StockService(redis, scripts, config, settings, StoreClock())
        for done, p in enumerate(partitions, 1):
            skus = sorted([sku async for sku in redis.sscan_iter(keys.skus(p), count=1000)])
            for start in range(0, len(skus), BATCH_SKUS):
                batch = skus[start : start + BATCH_SKUS]
                for sku, rows in zip(batch, await stock.positions_of(batch), strict=True):
                    skus_seen += bool(rows)
                    for row in rows:
                        if wanted is None or row["location"] in wanted:
                            writer.write({"sku": sku, **row})
                            positions += 1
            progress(done, len(partitions), positions)
    return skus_seen, positions


def export(args: argparse.Namespace) -> int:
    def body() -> int:
        bad = [p for p in args.partition or [] if not 0 <= p < keys.PARTITIONS]
        if bad:
            raise CliError(USAGE, f"no partition {bad[0]} (0-{keys.PARTITIONS - 1})")
        fmt = args.format or ("csv" if args.output and args.output.suffix == ".csv" else "ndjson")
        columns = IMPORT_COLUMNS if args.for_import else COLUMNS
        started = time.monotonic()
        if args.output is None:
            skus, positions = asyncio.run(_export(args, Writer(sys.stdout.buffer, fmt, columns)))
            sys.stdout.flush()
        else:
            # Written beside the target and renamed at the end: never a half-written file.
            partial = args.output.with_name(f".{args.output.name}.partial")
            try:
                with open(partial, "wb") as out:
                    skus, positions = asyncio.run(_export(args, Writer(out, fmt, columns)))
                os.replace(partial, args.output)
            finally:
                partial.unlink(missing_ok=True)
        if not args.quiet:
            print(
                f"exported {positions:,} positions of {skus:,} skus as {fmt} in "
                f"{time.monotonic() - started:.1f} s",
                file=sys.stderr,
            )
        return 0

    try:
        return run_command("export", body)
    except BrokenPipeError:  # `omnistock export | head`: the reader had enough
        sys.stderr.close()
        return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "export",
        help="write every position out as NDJSON or CSV",
        description="Write every position (sku, location, on_hand, held, committed, "
        "safety_stock, available) to stdout or a file, streamed partition by partition; "
        "progress on stderr. Each batch of skus is read atomically (the whole file is not "
        "one point in time). Exit 0 done, 2 usage error, 3 store unreachable.",
    )
    p.add_argument("--format", choices=["ndjson", "csv"], help="default: from --output, or ndjson")
    p.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here (default: stdout)")
    p.add_argument(
        "--for-import",
        action="store_true",
        help="only sku, location, on_hand, safety_stock: the input of `omnistock import`",
    )
    p.add_argument(
        "--location",
        action="append",
        metavar="ID",
        help="only positions at this location (repeatable)",
    )
    p.add_argument(
        "--partition",
        type=int,
        action="append",
        metavar="N",
        help="only partition N (repeatable; default: all 256)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress or summary on stderr")
    add_store_flags(p)
    p.set_defaults(func=export)
