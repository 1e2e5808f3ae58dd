"""`omnistock import FILE`: load a stock snapshot (CSV or NDJSON) from ERP/WMS."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import orjson
import redis
from redis.exceptions import RedisError

from app.cli.common import CliError, add_action, store_settings, store_url
from app.domain.checkpoint import Checkpoint, fingerprint
from app.domain.importer import Importer, ImportRun, registered_locations
from app.domain.snapshot import Rejected, SnapshotError, SnapshotReader, detect_format
from app.domain.supply_import import SupplyImporter, SupplyReader
from app.logs import redact
from app.settings import Settings

SHOWN_REJECTS = 100


class Progress:
    """A one-line bar on stderr (a line every few seconds when stderr is not a terminal)."""

    def __init__(self, total_bytes: int, start_bytes: int, enabled: bool) -> None:
        self._total = max(total_bytes, 1)
        self._start_bytes = start_bytes
        self._enabled = enabled
        self._tty = sys.stderr.isatty()
        self._t0 = time.monotonic()
        self._last = 0.0

    def update(self, offset: int, rows: int, final: bool = False) -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        if not final and now - self._last < (0.2 if self._tty else 5.0):
            return
        self._last = now
        elapsed = max(now - self._t0, 1e-9)
        done = offset / self._total
        rate = rows / elapsed
        left = (self._total - offset) / max((offset - self._start_bytes) / elapsed, 1e-9)
        bar = "#" * int(done * 30)
        text = (
            f"[{bar:<30}] {done:6.1%} {rows:>11,} rows {rate:>9,.0f} rows/s"
            f" {'done' if final else f'ETA {left:5.0f} s'}"
        )
        if self._tty:
            print("\r" + text, end="\n" if final else "", file=sys.stderr, flush=True)
        else:
            print(text, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _store(settings: Settings) -> Iterator[redis.Redis]:
    """The store of OMNISTOCK_REDIS_URL; else the embedded one under OMNISTOCK_DATA_DIR,
    started for the import, or the one a running `omnistock serve` keeps there."""
    note = "omnistock import: {}: a running `omnistock serve` holds this data directory; "
    with store_url(settings, note + "importing into its store") as url:
        client: redis.Redis
        if settings.redis_cluster:
            from app.store.cluster import sync_cluster_client

            client = sync_cluster_client(url, socket_timeout=60)  # type: ignore[assignment]
        else:
            client = redis.Redis.from_url(url, socket_timeout=60, socket_connect_timeout=5)
        try:
            yield client
        finally:
            client.close()


def run_import(args: argparse.Namespace) -> int:
    from app.store.embedded import EmbeddedStoreError

    path = Path(args.file)
    try:
        fmt = detect_format(str(path), args.format)
        size = path.stat().st_size
        fp = fingerprint(path)
    except (SnapshotError, OSError) as exc:
        print(f"omnistock import: {exc}", file=sys.stderr)
        return 2
    checkpoint: Checkpoint | None = None
    if not args.no_checkpoint:
        cp_path = Path(args.checkpoint or f"{path}.checkpoint")
        checkpoint = None if args.restart else Checkpoint.load(cp_path, fp, fmt)
        if checkpoint is not None:
            print(
                f"omnistock import: resuming after line {checkpoint.line:,} ({cp_path})",
                file=sys.stderr,
            )
        else:
            checkpoint = Checkpoint(cp_path, fp, fmt)
    try:
        settings = store_settings(args)
    except CliError as exc:
        print(f"omnistock import: {exc.message}", file=sys.stderr)
        return exc.code
    rejects_out: IO[str] | None = None
    saved_line = checkpoint.line if checkpoint else 0  # what the checkpoint file says
    try:
        with _store(settings) as client, open(path, "rb") as fh:
            client.ping()
            locations = registered_locations(client)
            reader: SnapshotReader | SupplyReader
            if args.supply:  # a supply snapshot (app/domain/supply_import.py)
                reader = SupplyReader(fh, fmt, locations)
            else:
                reader = SnapshotReader(fh, fmt, locations)
            if args.rejects:
                rejects_out = open(args.rejects, "a")  # noqa: SIM115 - closed below
            start_line = checkpoint.line if checkpoint else 0
            start_offset = checkpoint.offset if checkpoint else 0
            progress = Progress(size, start_offset, not args.quiet)
            shown = 0

            def on_reject(rejected: Rejected) -> None:
                nonlocal shown
                if shown < SHOWN_REJECTS:
                    print(f"{path}:{rejected.line}: {rejected.reason}", file=sys.stderr)
                shown += 1
                if rejects_out is not None:
                    rejects_out.write(f"{rejected.line}\t{rejected.reason}\n")

            def on_commit(line: int, offset: int, rejected: int) -> None:
                nonlocal saved_line
                if checkpoint is not None:
                    checkpoint.line, checkpoint.offset = line, offset
                    checkpoint.rejected += rejected
                    checkpoint.save()
                    saved_line = line

            importer = (SupplyImporter if args.supply else Importer)(
                client,
                event_retention_seconds=settings.event_retention_seconds,
                batch_rows=args.batch_rows,
            )
            job = ImportRun(
                on_reject, on_commit, progress.update, offset=start_offset, line=start_line
            )
            stats = importer.run(reader, job)  # type: ignore[arg-type]  # each its own reader
            progress.update(size, stats.rows, final=True)
    except SnapshotError as exc:
        print(f"omnistock import: {path}: {exc}", file=sys.stderr)
        return 2
    except EmbeddedStoreError as exc:
        print(f"omnistock import: embedded store: {redact(str(exc))}", file=sys.stderr)
        return 3
    except (RedisError, OSError, KeyboardInterrupt) as exc:
        interrupted = isinstance(exc, KeyboardInterrupt)
        what = "interrupted" if interrupted else f"store unreachable or failed: {redact(str(exc))}"
        print(f"omnistock import: {what}", file=sys.stderr)
        if saved_line:
            print(f"  resume with the same command (after line {saved_line:,})", file=sys.stderr)
        return 1 if interrupted else 3
    finally:
        if rejects_out is not None:
            rejects_out.close()

    earlier = checkpoint.rejected - stats.rejected if checkpoint else 0
    if shown > SHOWN_REJECTS:
        print(f"... and {shown - SHOWN_REJECTS:,} more rejected rows", file=sys.stderr)
    if checkpoint is not None:
        checkpoint.remove()
    summary = {
        "file": str(path),
        "format": fmt,
        "rows": stats.rows,
        "changed": stats.changed,
        "unchanged": stats.unchanged,
        "rejected": stats.rejected,
        "rejected_in_earlier_runs": earlier,
        "resumed_after_line": start_line,
        "last_line": stats.last_line,
        "seconds": round(stats.seconds, 3),
        "rows_per_second": round(stats.rate),
    }
    if args.json:
        print(orjson.dumps(summary).decode())
    else:
        print(
            f"imported {stats.rows:,} rows in {stats.seconds:.1f} s ({stats.rate:,.0f} rows/s): "
            f"{stats.changed:,} changed, {stats.unchanged:,} unchanged, "
            f"{stats.rejected:,} rejected"
            + (f" (+{earlier:,} rejected in earlier runs)" if earlier else "")
        )
    return 1 if stats.rejected or earlier else 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_action(
        sub,
        "import",
        run_import,
        help="load a stock snapshot (CSV or NDJSON) from ERP/WMS",
        description="Set on_hand (and optionally safety_stock) of every position in FILE: CSV "
        "with a header `sku,location,on_hand[,safety_stock]`, or NDJSON with one object per "
        "line. Streams the file, resumes from its checkpoint after a failure, and is "
        "idempotent: a re-run changes nothing. Rejected rows are listed with their line "
        "numbers (exit 1). Uses OMNISTOCK_REDIS_URL, or the embedded store under "
        "OMNISTOCK_DATA_DIR (the one a running service keeps there, if any).",
        store=True,
    )
    p.add_argument("file", help="snapshot file (.csv, .ndjson or .jsonl)")
    p.add_argument("--format", choices=["csv", "ndjson"], help="default: from the file name")
    p.add_argument("--checkpoint", help="checkpoint file (default: FILE.checkpoint)")
    p.add_argument("--no-checkpoint", action="store_true", help="do not write a checkpoint")
    p.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--rejects", help="also append every rejected row (line, reason) to this file")
    p.add_argument("--batch-rows", type=int, default=20_000, help="rows per pipeline (20000)")
    p.add_argument(
        "--supply",
        action="store_true",
        help="FILE is a supply snapshot: sku, location, supply_id, type, quantity, eta "
        "[, reference] per line (quantity 0 cancels); see docs/architecture.md",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
