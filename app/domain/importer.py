"""Bulk import of stock snapshots from ERP/WMS: `sku,location,on_hand[,safety_stock]` rows as
CSV (with a header line) or NDJSON (one JSON object per line).

The file is streamed: rows are read, checked and buffered per partition, and every `batch_rows`
rows the buffer goes to the store as one pipeline of `stock_import.lua` calls (one per partition,
at most `rows_per_call` rows each). While the store applies one batch the next one is read, so
memory stays at two batches whatever the file's size.

A row sets absolute values, so applying it twice is the same as once: a re-run of the same file
changes nothing (and emits no event), and a run resumed from a checkpoint may safely repeat the
rows after it. The checkpoint names the last line of the last batch the store acknowledged and
the byte offset after it, with a fingerprint of the file so it never resumes a different one.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
import redis
from redis.exceptions import NoScriptError

from app import keys
from app.domain.clock import Clock, SystemClock
from app.domain.models import ID_PATTERN, MAX_UNITS
from app.store.scripts import script_source

FORMATS = ("csv", "ndjson")
COLUMNS = ("sku", "location", "on_hand", "safety_stock")
REQUIRED = ("sku", "location", "on_hand")

_ID = re.compile(ID_PATTERN)
_INT = re.compile(r"^-?[0-9]{1,13}$")
_ID_RULE = "must be 1-128 characters of A-Z a-z 0-9 . _ : -"


class SnapshotError(Exception):
    """The file cannot be imported at all (unknown format, bad CSV header)."""


@dataclass(slots=True)
class Row:
    line: int
    sku: str
    location: str
    on_hand: int
    safety_stock: int | None  # None keeps the current value (0 for a new position)


@dataclass(slots=True)
class Rejected:
    line: int
    reason: str


def detect_format(path: str, explicit: str | None = None) -> str:
    if explicit:
        if explicit not in FORMATS:
            raise SnapshotError(f"unknown format {explicit!r}; one of {', '.join(FORMATS)}")
        return explicit
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".ndjson", ".jsonl", ".json"):
        return "ndjson"
    raise SnapshotError(f"cannot tell the format of {path!r} from its name: pass --format")


def _check(
    line: int, sku: Any, location: Any, on_hand: Any, safety: Any, locations: set[str]
) -> Row | Rejected:
    """`on_hand` and `safety` arrive already as int (or None for safety); anything else is an
    error message prepared by the parser."""
    if not isinstance(sku, str) or not _ID.fullmatch(sku):
        return Rejected(line, f"sku {_ID_RULE}")
    if not isinstance(location, str) or not _ID.fullmatch(location):
        return Rejected(line, f"location {_ID_RULE}")
    if isinstance(on_hand, str):
        return Rejected(line, on_hand)
    if isinstance(safety, str):
        return Rejected(line, safety)
    if location not in locations:
        return Rejected(line, f"location {location!r} is not registered")
    return Row(line, sku, location, on_hand, safety)


def _on_hand(value: Any) -> int | str:
    if not isinstance(value, int) or isinstance(value, bool) or abs(value) > MAX_UNITS:
        return f"on_hand must be an integer within ±{MAX_UNITS}"
    return value


def _safety(value: Any) -> int | str | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_UNITS:
        return f"safety_stock must be an integer from 0 to {MAX_UNITS}, or empty"
    return value


def _csv_int(text: str) -> int | None:
    return int(text) if _INT.match(text) else None


class SnapshotReader:
    """Rows of a snapshot, each with the byte offset just after it.

    CSV: a header line naming `sku`, `location`, `on_hand` and optionally `safety_stock` (any
    order, nothing else); fields may be wrapped in plain double quotes. Identifiers cannot hold
    commas, quotes or line breaks, so one line is one row. NDJSON: one object per line with the
    same fields; `safety_stock` may be absent or null. Blank lines are skipped.
    """

    def __init__(self, fh: IO[bytes], fmt: str, locations: set[str]) -> None:
        self._fh = fh
        self.format = fmt
        self._locations = locations
        self._columns: list[str] = []
        self.header_end = 0  # byte offset of the first row
        if fmt == "csv":
            self._read_header()

    def _read_header(self) -> None:
        raw = self._fh.readline()
        self.header_end = len(raw)
        names = [_unquote(f).lower() for f in raw.decode("utf-8-sig").strip().split(",")]
        missing = [c for c in REQUIRED if c not in names]
        unknown = [c for c in names if c not in COLUMNS]
        if missing or unknown or len(set(names)) != len(names):
            raise SnapshotError(
                "the CSV header must name sku, location, on_hand and optionally safety_stock "
                f"(got {raw.decode('utf-8', 'replace').strip()!r})"
            )
        self._columns = names

    def rows(self, offset: int = 0, line: int = 0) -> Iterator[tuple[Row | Rejected, int]]:
        """From byte `offset` (0: the first row), whose line number is `line + 1`."""
        offset = max(offset, self.header_end)
        line = max(line, 1 if self.format == "csv" else 0)
        self._fh.seek(offset)
        parse = self._parse_csv if self.format == "csv" else self._parse_ndjson
        for raw in iter(self._fh.readline, b""):
            offset += len(raw)
            line += 1
            if raw.isspace():
                continue
            yield parse(line, raw), offset

    def _parse_csv(self, line: int, raw: bytes) -> Row | Rejected:
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            return Rejected(line, "not UTF-8")
        fields = text.rstrip("\r\n").split(",")
        if len(fields) != len(self._columns):
            return Rejected(line, f"expected {len(self._columns)} fields, got {len(fields)}")
        values = dict(zip(self._columns, map(_unquote, fields), strict=True))
        number = _csv_int(values["on_hand"])
        on_hand: int | str = _on_hand(number)
        raw_safety = values.get("safety_stock", "")
        safety: int | str | None = None
        if raw_safety != "":
            number = _csv_int(raw_safety)
            safety = _safety(number if number is not None else raw_safety)
        return _check(line, values["sku"], values["location"], on_hand, safety, self._locations)

    def _parse_ndjson(self, line: int, raw: bytes) -> Row | Rejected:
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return Rejected(line, "not a JSON object")
        if not isinstance(doc, dict):
            return Rejected(line, "not a JSON object")
        unknown = set(doc) - set(COLUMNS)
        if unknown:
            return Rejected(line, f"unknown fields: {', '.join(sorted(unknown))}")
        for name in REQUIRED:
            if name not in doc:
                return Rejected(line, f"missing field: {name}")
        return _check(
            line,
            doc["sku"],
            doc["location"],
            _on_hand(doc["on_hand"]),
            _safety(doc.get("safety_stock")),
            self._locations,
        )


def _unquote(field: str) -> str:
    if len(field) >= 2 and field[0] == '"' and field[-1] == '"':
        return field[1:-1]
    return field


# -- checkpoint --------------------------------------------------------------------------------


def fingerprint(path: Path) -> str:
    """Size-independent identity of a snapshot: its first 64 KiB (a new export differs there,
    if only in the first rows' figures)."""
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read(65536)).hexdigest()


@dataclass
class Checkpoint:
    """The last line the store acknowledged, and the byte offset just after it."""

    path: Path
    fingerprint: str
    format: str
    line: int = 0
    offset: int = 0
    rejected: int = 0  # rejected rows before `line` (reported by the run that read them)

    @classmethod
    def load(cls, path: Path, fp: str, fmt: str) -> Checkpoint | None:
        try:
            doc = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        if doc.get("fingerprint") != fp or doc.get("format") != fmt:
            return None
        return cls(path, fp, fmt, int(doc["line"]), int(doc["offset"]), int(doc["rejected"]))

    def save(self) -> None:
        doc = asdict(self)
        doc["path"] = str(self.path)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_bytes(orjson.dumps(doc))
        os.replace(tmp, self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


# -- import ------------------------------------------------------------------------------------


@dataclass
class ImportStats:
    rows: int = 0  # valid rows sent to the store in this run
    changed: int = 0
    unchanged: int = 0
    rejected: int = 0  # in this run
    last_line: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Batch:
    by_partition: dict[int, list[Row]] = field(default_factory=dict)
    rows: int = 0
    rejected: int = 0
    line: int = 0
    offset: int = 0


def channels_arg(client: redis.Redis) -> bytes:
    """{channel: [low_stock_threshold, [locations]]} for every channel, as scripts take it."""
    raw: dict[bytes, bytes] = client.hgetall(keys.CHANNELS)  # type: ignore[assignment]
    out = {}
    for channel_id, doc in raw.items():
        ch = orjson.loads(doc)
        out[channel_id.decode()] = [int(ch.get("low_stock_threshold", 5)), ch["locations"]]
    return orjson.dumps(out)


def registered_locations(client: redis.Redis) -> set[str]:
    return {loc.decode() for loc in client.hkeys(keys.LOCATIONS)}  # type: ignore[union-attr]


class Importer:
    """Applies rows to the store, `batch_rows` per pipeline, one batch in flight while the
    next is read. `client` is a synchronous redis-py client (bytes replies)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        event_retention_seconds: int,
        batch_rows: int = 20_000,
        rows_per_call: int = 500,
        clock: Clock | None = None,
    ) -> None:
        self._client = client
        self._retention_ms = event_retention_seconds * 1000
        self._batch_rows = batch_rows
        self._rows_per_call = rows_per_call
        self._clock = clock or SystemClock()
        self._source = script_source("stock_import")
        self._sha = ""
        self._channels = b"{}"

    def run(
        self,
        rows: Iterator[tuple[Row | Rejected, int]],
        *,
        on_reject: Callable[[Rejected], None],
        on_commit: Callable[[int, int, int], None],
        on_progress: Callable[[int, int], None] | None = None,
    ) -> ImportStats:
        """`on_commit(line, offset, rejected)` after the store acknowledged every row up to
        `line` (`rejected`: rows of that batch rejected before reaching the store);
        `on_progress(offset, rows)` as rows are read."""
        self._sha = str(self._client.script_load(self._source))
        self._channels = channels_arg(self._client)
        stats = ImportStats()
        start = time.perf_counter()
        batch = _Batch()
        in_flight: tuple[Future[tuple[int, int]], _Batch] | None = None

        def settle() -> None:
            nonlocal in_flight
            if in_flight is None:
                return
            future, sent = in_flight
            changed, unchanged = future.result()
            stats.changed += changed
            stats.unchanged += unchanged
            stats.last_line = sent.line
            on_commit(sent.line, sent.offset, sent.rejected)
            in_flight = None

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import") as pool:
            for item, offset in rows:
                if isinstance(item, Rejected):
                    stats.rejected += 1
                    batch.rejected += 1
                    on_reject(item)
                else:
                    stats.rows += 1
                    batch.by_partition.setdefault(keys.partition_of(item.sku), []).append(item)
                    batch.rows += 1
                batch.line = item.line
                batch.offset = offset
                if batch.rows >= self._batch_rows:
                    settle()
                    in_flight = (pool.submit(self._apply, batch), batch)
                    if on_progress is not None:
                        on_progress(offset, stats.rows)
                    batch = _Batch()
            settle()
            if batch.line:
                in_flight = (pool.submit(self._apply, batch), batch)
                settle()
        stats.seconds = time.perf_counter() - start
        return stats

    def _apply(self, batch: _Batch) -> tuple[int, int]:
        """One pipeline for the batch. Safe to repeat whole (rows are absolute), which is what
        happens after a NOSCRIPT (restarted or flushed store)."""
        for attempt in range(2):
            now = self._clock.now_ms()
            min_id = str(max(0, now - self._retention_ms))
            with self._client.pipeline(transaction=False) as pipe:
                for p, group in batch.by_partition.items():
                    for i in range(0, len(group), self._rows_per_call):
                        self._queue_call(pipe, p, group[i : i + self._rows_per_call], now, min_id)
                try:
                    replies = pipe.execute()
                except NoScriptError:
                    if attempt:
                        raise
                    self._sha = str(self._client.script_load(self._source))
                    continue
            changed = sum(int(r[0]) for r in replies)
            unchanged = sum(int(r[1]) for r in replies)
            return changed, unchanged
        raise AssertionError("unreachable")

    def _queue_call(self, pipe: Any, p: int, rows: list[Row], now: int, min_id: str) -> None:
        index: dict[str, int] = {}
        ks = [keys.events(p), keys.skus(p)]
        args: list[Any] = [now, min_id, self._channels]
        for row in rows:
            si = index.get(row.sku)
            if si is None:
                si = index[row.sku] = len(index) + 1
                ks += keys.sku_keys(p, row.sku)
            safety = "" if row.safety_stock is None else row.safety_stock
            args += (row.sku, si, row.location, row.on_hand, safety)
        pipe.evalsha(self._sha, len(ks), *ks, *args)
