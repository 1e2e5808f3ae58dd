"""`omnistock export`: every position (or, with `--supply`, every supply line) out of the
store, as NDJSON or CSV, streamed.

Reads partition by partition (the skus of each from its `skus` set, then their positions in
batches, each batch one atomic script call with expired holds already not counting), so
memory stays flat for any catalogue and a partition's rows come out sorted by sku. The whole
file is not one point in time: each batch is. `--for-import` writes the columns `omnistock
import` reads (sku, location, on_hand, safety_stock), so a store can be copied to another.

`--supply` writes the supply lines instead (sku, location, supply_id, type, quantity: the
units still to come, eta, reference, promised, incoming), a partition's skus found by one SCAN
of the supply keys first (a sku may have supply and no position; only the names are kept), the
lines of a batch of skus read by one `supply_read.lua` call per partition (lapsed holds'
promises already not counting). With `--for-import` it writes what `omnistock import --supply`
reads (the first seven): the promises belong to holds, which are not exported, as held units
are not. A line whose eta has passed (overdue, not received) is written, and counted on
stderr: the import refuses it (an eta must be ahead, as through the API), by its line number.
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
    add_action,
    add_partition_flag,
    command,
    open_services,
    partitions,
)
from app.domain.clock import iso
from app.domain.supply import SupplyService
from app.domain.supply_import import COLUMNS as SUPPLY_IMPORT_COLUMNS

COLUMNS = ["sku", "location", "on_hand", "held", "committed", "safety_stock", "available"]
IMPORT_COLUMNS = ["sku", "location", "on_hand", "safety_stock"]
SUPPLY_COLUMNS = [*SUPPLY_IMPORT_COLUMNS, "promised", "incoming"]
BATCH_SKUS = 500
Row = dict[str, Any]


class Writer:
    def __init__(self, out: IO[bytes], fmt: str, columns: list[str]) -> None:
        self._out = out
        self._fmt = fmt
        self._columns = columns
        if fmt == "csv":
            out.write(",".join(columns).encode() + b"\n")

    def write(self, row: Row) -> None:
        if self._fmt == "csv":
            self._out.write(",".join(_csv(row, c) for c in self._columns).encode() + b"\n")
        else:
            self._out.write(orjson.dumps({c: row[c] for c in self._columns}) + b"\n")


def _csv(row: Row, column: str) -> str:
    """One CSV field. Identifiers are [A-Za-z0-9._:-] and counters integers: nothing to quote;
    a supply line's reference (free text) is quoted as RFC 4180 says when it needs it, and
    empty when there is none. A line break cannot be in a one-line row."""
    value = row[column]
    if value is None:
        return ""
    text = str(value)
    if "\n" in text or "\r" in text:
        raise CliError(
            USAGE,
            f"the {column} of {row['sku']} {row['location']} {row.get('supply_id', '')} holds a "
            "line break, which a CSV row cannot: export as --format ndjson",
        )
    if "," in text or '"' in text:
        return '"' + text.replace('"', '""') + '"'
    return text


async def _export(
    args: argparse.Namespace, chosen: list[int], writer: Writer
) -> tuple[int, int, int]:
    """(skus, rows written, overdue supply lines written)."""
    wanted = set(args.location) if args.location else None
    progress = Progress("export", "supply lines" if args.supply else "positions", not args.quiet)
    skus_seen = written = overdue = 0
    async with open_services(args) as store:
        redis = store.redis
        if args.supply:
            supply = SupplyService(store.scripts, store.config, store.stock, store.clock)
            by_partition = await _supply_skus(redis, set(chosen))
        for done, p in enumerate(chosen, 1):
            if args.supply:
                skus = sorted(by_partition.get(p, ()))
            else:
                skus = sorted([sku async for sku in redis.sscan_iter(keys.skus(p), count=1000)])
            for start in range(0, len(skus), BATCH_SKUS):
                batch = skus[start : start + BATCH_SKUS]
                if args.supply:
                    rows_of = await _supply_rows(supply, batch)
                else:
                    rows_of = await store.stock.positions_of(batch)
                for sku, rows in zip(batch, rows_of, strict=True):
                    skus_seen += bool(rows)
                    for row in rows:
                        if wanted is None or row["location"] in wanted:
                            writer.write({"sku": sku, **row})
                            written += 1
                            overdue += row.get("overdue", False)
            progress(done, len(chosen), written)
    return skus_seen, written, overdue


async def _supply_skus(redis: Any, partitions: set[int]) -> dict[int, set[str]]:
    """The skus with supply lines, by partition: one SCAN pass over the supply keys (on a
    cluster, over every primary)."""
    found: dict[int, set[str]] = {}
    prefix = len(keys.supply(0, ""))  # every partition's tag has the same length
    pattern = f"{keys.PREFIX}:{{[0-9][0-9][0-9]}}:sup:*"
    async for key in redis.scan_iter(match=pattern, count=1000):
        name = key.decode() if isinstance(key, bytes) else key
        p = keys.partition_of(sku := name[prefix:])
        if p in partitions and name == keys.supply(p, sku):
            found.setdefault(p, set()).add(sku)
    return found


async def _supply_rows(supply: SupplyService, skus: list[str]) -> list[list[Row]]:
    """Each sku's supply lines as export rows, in the order asked: the units still to come,
    the eta in RFC 3339, and whether it has passed (`overdue`, by the store's clock)."""
    now, lines = await supply.lines_of(skus)
    return [
        [
            {
                **line,
                "eta": iso(line["eta"]),
                "reference": line.get("reference") or None,
                "incoming": line["free"],
                "overdue": line["eta"] <= now,
            }
            for line in lines[sku]
        ]
        for sku in skus
    ]


@command("export")
def export(args: argparse.Namespace) -> int:
    chosen = partitions(args)
    fmt = args.format or ("csv" if args.output and args.output.suffix == ".csv" else "ndjson")
    if args.supply:
        columns = list(SUPPLY_IMPORT_COLUMNS) if args.for_import else SUPPLY_COLUMNS
    else:
        columns = IMPORT_COLUMNS if args.for_import else COLUMNS
    started = time.monotonic()
    if args.output is None:
        try:
            skus, rows, overdue = asyncio.run(
                _export(args, chosen, Writer(sys.stdout.buffer, fmt, columns))
            )
            sys.stdout.flush()
        except BrokenPipeError:  # `omnistock export | head`: the reader had enough
            # (the store's socket errors come as RedisError: this one is stdout's). What is
            # left in stdout's buffer goes nowhere, so nothing fails again at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    else:
        # Written beside the target and renamed at the end: never a half-written file.
        partial = args.output.with_name(f".{args.output.name}.partial")
        try:
            with open(partial, "wb") as out:
                skus, rows, overdue = asyncio.run(_export(args, chosen, Writer(out, fmt, columns)))
            os.replace(partial, args.output)
        finally:
            partial.unlink(missing_ok=True)
    if not args.quiet:
        print(
            f"exported {rows:,} {'supply lines' if args.supply else 'positions'} of "
            f"{skus:,} skus as {fmt} in {time.monotonic() - started:.1f} s",
            file=sys.stderr,
        )
    if overdue:  # said even with --quiet: an import of this file rejects them
        print(
            f"{overdue:,} supply lines are overdue (their eta has passed): `omnistock "
            "import --supply` rejects them, as the API refuses an eta that is not ahead",
            file=sys.stderr,
        )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_action(
        sub,
        "export",
        export,
        help="write every position (or supply line) out as NDJSON or CSV",
        description="Write every position (sku, location, on_hand, held, committed, "
        "safety_stock, available), or with --supply every supply line, to stdout or a file, "
        "streamed partition by partition; progress on stderr. Each batch of skus is read "
        "atomically (the whole file is not one point in time). Exit 0 done, 2 usage error, "
        "3 store unreachable.",
        store=True,
    )
    p.add_argument("--format", choices=["ndjson", "csv"], help="default: from --output, or ndjson")
    p.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here (default: stdout)")
    p.add_argument(
        "--for-import",
        action="store_true",
        help="only sku, location, on_hand, safety_stock: the input of `omnistock import` "
        "(with --supply: sku, location, supply_id, type, quantity, eta, reference, the input of "
        "`omnistock import --supply`)",
    )
    p.add_argument(
        "--supply",
        action="store_true",
        help="the supply lines instead of the positions: sku, location, supply_id, type, "
        "quantity (the units still to come), eta, reference, promised, incoming",
    )
    p.add_argument(
        "--location",
        action="append",
        metavar="ID",
        help="only positions at this location (repeatable)",
    )
    add_partition_flag(p, "only partition N (repeatable; default: all 256)")
    p.add_argument("--quiet", action="store_true", help="no progress or summary on stderr")
