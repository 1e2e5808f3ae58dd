"""Bulk import of stock snapshots from ERP/WMS: `sku,location,on_hand[,safety_stock]` rows as
CSV (with a header line) or NDJSON (one JSON object per line).

The file is streamed in batches of `batch_rows` lines. A batch's rows are checked (CSV: one
regular expression over the whole batch, with the per-line parser for the lines it does not
take; NDJSON: orjson per line) and grouped by partition and sku, and go to the store as a
pipeline of `stock_import.lua` calls (one per partition, split after `rows_per_call` rows). All
batches travel on one connection, so the store applies them in file order; a thread sends each
batch and reads the replies of the one before, so the store always has the next batch queued
while the next but one is read, and memory stays at a few batches whatever the file's size.

A row sets absolute values, so applying it twice is the same as once: a re-run of the same file
changes nothing (and emits no event), and a run resumed from a checkpoint may safely repeat the
rows after it. The checkpoint names the last line of the last batch the store acknowledged and
the byte offset after it, with a fingerprint of the file so it never resumes a different one.
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

import orjson
import redis
from redis.exceptions import NoScriptError

from app import keys
from app.domain.clock import Clock, StoreClock
from app.domain.models import ID_PATTERN, MAX_UNITS
from app.store.mux import pack
from app.store.scripts import script_source

FORMATS = ("csv", "ndjson")
COLUMNS = ("sku", "location", "on_hand", "safety_stock")
REQUIRED = ("sku", "location", "on_hand")

_ID = re.compile(ID_PATTERN)
_INT = re.compile(r"^-?[0-9]{1,13}$")
_ID_RULE = "must be 1-128 characters of A-Z a-z 0-9 . _ : -"

# The CSV fast path: what it takes is valid by the per-line rules below, and its text goes to
# the store as is, so integers must be canonical (no leading zeros, no -0; |n| <= MAX_UNITS).
# Anything else (quotes, blank lines, other spellings, errors) goes through the per-line parser.
_CSV_FIELD = {
    "sku": rb"([A-Za-z0-9._:-]{1,128})",
    "location": rb"([A-Za-z0-9._:-]{1,128})",
    "on_hand": rb"(0|-?(?:[1-9][0-9]{0,11}|1000000000000))",
    "safety_stock": rb"(0|[1-9][0-9]{0,11}|1000000000000|)",
}
_COLUMN_SET = frozenset(COLUMNS)


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


@dataclass(slots=True)
class Batch:
    """Consecutive lines of a snapshot, checked: the valid rows grouped by partition and sku
    (file order within a sku, which is all that orders rows: each sku's rows go to the store
    together, and rows of different skus touch different positions), the rejected ones, and
    where the batch ends."""

    skus: dict[int, dict[bytes, list[Any]]] = field(default_factory=dict)
    """partition -> sku -> [location, on_hand, safety_stock ("" keeps it), location, ...]"""
    rows: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    line: int = 0  # the last line of the batch
    offset: int = 0  # the byte offset just after it


class SnapshotReader:
    """Rows of a snapshot: in batches (`batches`, what the importer reads) or one by one with
    the byte offset just after each (`rows`).

    CSV: a header line naming `sku`, `location`, `on_hand` and optionally `safety_stock` (any
    order, nothing else); fields may be wrapped in plain double quotes. Identifiers cannot hold
    commas, quotes or line breaks, so one line is one row. NDJSON: one object per line with the
    same fields; `safety_stock` may be absent or null. Blank lines are skipped.
    """

    def __init__(self, fh: IO[bytes], fmt: str, locations: set[str]) -> None:
        self._fh = fh
        self.format = fmt
        self._locations = locations
        # Registered locations that are also valid identifiers: membership is both checks.
        self._known = {loc for loc in locations if _ID.fullmatch(loc)}
        self._known_bytes = {loc.encode() for loc in self._known}
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
        # One group per column in file order, plus an empty one for an absent safety_stock,
        # so every match is a tuple of 4 fields, reordered to COLUMNS if the header is not.
        row = b",".join(_CSV_FIELD[name] for name in names)
        order = [*names, *(["safety_stock"] if "safety_stock" not in names else [])]
        if "safety_stock" not in names:
            row += b"()"
        self._csv_rows = re.compile(rb"^" + row + rb"\r?$", re.MULTILINE)
        self._csv_row = re.compile(rb"^" + row + rb"\r?$")
        self._csv_order = (
            None if order == list(COLUMNS) else itemgetter(*(order.index(c) for c in COLUMNS))
        )

    def rows(self, offset: int = 0, line: int = 0) -> Iterator[tuple[Row | Rejected, int]]:
        """From byte `offset` (0: the first row), whose line number is `line + 1`."""
        offset = max(offset, self.header_end)
        line = max(line, 1 if self.format == "csv" else 0)
        self._fh.seek(offset)
        for raw in iter(self._fh.readline, b""):
            offset += len(raw)
            line += 1
            item = self._parse(line, raw)
            if item is not None:
                yield item, offset

    def batches(self, offset: int = 0, line: int = 0, size: int = 20_000) -> Iterator[Batch]:
        """Batches of `size` lines from byte `offset` (0: the first row), whose line number is
        `line + 1`."""
        offset = max(offset, self.header_end)
        line = max(line, 1 if self.format == "csv" else 0)
        self._fh.seek(offset)
        while lines := list(islice(self._fh, size)):
            batch = Batch(line=line + len(lines), offset=offset + sum(map(len, lines)))
            if self.format == "csv":
                self._csv_batch(batch, lines, line + 1)
            else:
                self._ndjson_batch(batch, lines, line + 1)
            yield batch
            line, offset = batch.line, batch.offset

    def _csv_batch(self, batch: Batch, lines: list[bytes], first: int) -> None:
        """One regular expression over the batch; when some line does not match it, one per
        line (a match is one whole line, so as many matches as lines means every line)."""
        matches: Iterable[tuple[bytes, ...] | None] = self._csv_rows.findall(b"".join(lines))
        if len(matches) != len(lines):  # type: ignore[arg-type]
            matches = [m.groups() if (m := self._csv_row.match(raw)) else None for raw in lines]
        if self._csv_order is not None:
            order = self._csv_order
            matches = [None if m is None else order(m) for m in matches]
        self._group(batch, matches, lines, first)

    def _ndjson_batch(self, batch: Batch, lines: list[bytes], first: int) -> None:
        """Rows that pass every check at once; the per-line parser names what is wrong with
        the others (and skips blank lines)."""
        loads, decode_error = orjson.loads, orjson.JSONDecodeError
        known, id_match = self._known, _ID.fullmatch
        rows: list[tuple[Any, ...] | None] = []
        for raw in lines:
            try:
                doc = loads(raw)
            except decode_error:
                rows.append(None)
                continue
            if type(doc) is dict and doc.keys() <= _COLUMN_SET:
                sku, loc = doc.get("sku"), doc.get("location")
                on_hand, safety = doc.get("on_hand"), doc.get("safety_stock")
                if (
                    type(loc) is str
                    and loc in known
                    and type(on_hand) is int
                    and -MAX_UNITS <= on_hand <= MAX_UNITS
                    and (safety is None or (type(safety) is int and 0 <= safety <= MAX_UNITS))
                    and type(sku) is str
                    and id_match(sku)
                ):
                    rows.append(
                        (sku.encode(), loc.encode(), on_hand, b"" if safety is None else safety)
                    )
                    continue
            rows.append(None)
        self._group(batch, rows, lines, first)

    def _group(
        self,
        batch: Batch,
        rows: Iterable[tuple[Any, ...] | None],
        lines: list[bytes],
        first: int,
    ) -> None:
        """Rows the fast path took (`None`: the per-line parser decides) into `batch.skus`."""
        groups = batch.skus
        known = self._known_bytes
        last: bytes | None = None
        flat: list[Any] = []
        count = 0
        for i, row in enumerate(rows):
            if row is None or row[1] not in known:
                item = self._parse(first + i, lines[i])
                if item is None:
                    continue
                if isinstance(item, Rejected):
                    batch.rejected.append(item)
                    continue
                safety: Any = b"" if item.safety_stock is None else item.safety_stock
                row = (item.sku.encode(), item.location.encode(), item.on_hand, safety)
            sku, location, on_hand, safety = row
            if sku != last:
                last = sku
                by_sku = groups.get(p := zlib.crc32(sku) % keys.PARTITIONS)  # partition_of()
                if by_sku is None:
                    by_sku = groups[p] = {}
                got = by_sku.get(sku)
                if got is None:
                    got = by_sku[sku] = []
                flat = got
            flat += (location, on_hand, safety)
            count += 1
        batch.rows = count

    def _parse(self, line: int, raw: bytes) -> Row | Rejected | None:
        """One line by the full rules (None: a blank line)."""
        if raw.isspace():
            return None
        return self._parse_csv(line, raw) if self.format == "csv" else self._parse_ndjson(line, raw)

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


Call = tuple[Any, ...]  # one command: EVALSHA, sha, numkeys, keys..., args...


class Importer:
    """Applies batches to the store: one pipeline of script calls per batch, up to
    `IN_FLIGHT` batches sent and not yet acknowledged while the next is read. `client` is a
    synchronous redis-py client (bytes replies), or a cluster client."""

    IN_FLIGHT = 3

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
        self._clock = clock or StoreClock()
        self._source = script_source("stock_import").encode()
        self._sha = hashlib.sha1(self._source).hexdigest().encode()  # the store's id of it
        # Per partition: its stream and sku set, and the prefixes of a sku's three keys.
        self._keys = [
            tuple(
                k.encode()
                for k in (
                    keys.events(p),
                    keys.skus(p),
                    keys.position(p, ""),
                    keys.hold_expiry_by_sku(p, ""),
                    keys.hold_open_by_sku(p, ""),
                )
            )
            for p in range(keys.PARTITIONS)
        ]

    def run(
        self,
        reader: SnapshotReader,
        *,
        offset: int = 0,
        line: int = 0,
        on_reject: Callable[[Rejected], None],
        on_commit: Callable[[int, int, int], None],
        on_progress: Callable[[int, int], None] | None = None,
    ) -> ImportStats:
        """Imports the rows of `reader` after byte `offset` (line `line`). `on_commit(line,
        offset, rejected)` after the store acknowledged every row up to `line` (`rejected`:
        rows of that batch rejected before reaching the store); `on_progress(offset, rows)` as
        rows are read."""
        self._client.script_load(self._source)
        channels = channels_arg(self._client)
        stats = ImportStats()
        start = time.perf_counter()
        sent: deque[Batch] = deque()
        flight = _Flight(self._client, self._source)

        def settle(block: bool) -> None:
            while sent and (block or flight.ready()):
                changed, unchanged = flight.result()
                batch = sent.popleft()
                stats.changed += changed
                stats.unchanged += unchanged
                stats.last_line = batch.line
                on_commit(batch.line, batch.offset, len(batch.rejected))
                block = False

        try:
            for batch in reader.batches(offset, line, self._batch_rows):
                for rejected in batch.rejected:
                    on_reject(rejected)
                stats.rejected += len(batch.rejected)
                stats.rows += batch.rows
                while len(sent) >= self.IN_FLIGHT:
                    settle(block=True)
                flight.send(self._calls(batch, channels))
                sent.append(batch)
                settle(block=False)
                if on_progress is not None:
                    on_progress(batch.offset, stats.rows)
                batch.skus = {}  # only its place in the file is needed from here on
            flight.finish()
            while sent:
                settle(block=True)
        except BaseException:
            flight.abort()
            raise
        flight.close()
        stats.seconds = time.perf_counter() - start
        return stats

    def _calls(self, batch: Batch, channels: bytes) -> list[Call]:
        """One call per partition, split between skus after `rows_per_call` rows. Safe to
        repeat whole: rows are absolute."""
        offset = self._clock.offset_ms()  # the script reads the store's clock
        calls: list[Call] = []
        for p, by_sku in batch.skus.items():
            stream, skus, pos, hx, ho = self._keys[p]
            ks: list[bytes] = [stream, skus]
            args: list[Any] = [offset, self._retention_ms, channels]
            rows = 0
            for sku, flat in by_sku.items():
                ks += (pos + sku, hx + sku, ho + sku)
                n = len(flat) // 3
                args += (sku, n)
                args += flat
                rows += n
                if rows >= self._rows_per_call:
                    calls.append((b"EVALSHA", self._sha, len(ks), *ks, *args))
                    ks, args, rows = [stream, skus], [offset, self._retention_ms, channels], 0
            if rows:
                calls.append((b"EVALSHA", self._sha, len(ks), *ks, *args))
        return calls


class _Flight:
    """Batches of calls on their way to the store, in order. On one server, one connection
    carries them all (the store runs a connection's commands in the order sent) and a thread
    sends each batch, then reads the replies of the one before: the store finds the next
    batch queued when it finishes one. A cluster client gets one pipeline per batch instead,
    run by the same thread, one after the other.

    A store that lost its script cache (restart, SCRIPT FLUSH) answers NOSCRIPT without running
    the call. Calls after the first such one may have run or not (the script can be loaded
    again in between), so once every sent call has answered, the script is loaded and every
    call from the first NOSCRIPT on is sent again, in order: rows are absolute, so each
    position ends with its last row, and a row applied twice changes nothing the second time."""

    ROUNDS = 3  # resends before giving up on a store that keeps losing the script

    def __init__(self, client: redis.Redis, source: bytes) -> None:
        self._client = client
        self._source = source
        self._conn: Any = None
        if not isinstance(client, redis.RedisCluster):
            self._conn = client.connection_pool.get_connection()
        self._todo: queue.SimpleQueue[list[Call] | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[tuple[int, int] | BaseException] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="import-io", daemon=True)
        self._thread.start()

    def send(self, calls: list[Call]) -> None:
        self._todo.put(calls)

    def finish(self) -> None:
        """No more batches: the replies of the last one can be read."""
        self._todo.put(None)

    def ready(self) -> bool:
        return not self._done.empty()

    def result(self) -> tuple[int, int]:
        """(changed, unchanged) of the oldest batch not yet returned; waits for it."""
        got = self._done.get()
        if isinstance(got, BaseException):
            raise got
        return got

    def close(self) -> None:
        """After every result was read."""
        self._thread.join()
        if self._conn is not None:
            self._client.connection_pool.release(self._conn)

    def abort(self) -> None:
        """After a failure or an interrupt: replies may be unread, so the connection is
        closed (which also stops the thread if it waits on it) rather than reused."""
        self._todo.put(None)
        if self._conn is not None:
            self._conn.disconnect()
        self._thread.join(timeout=10)
        if self._conn is not None:
            self._client.connection_pool.release(self._conn)

    def _work(self) -> None:
        unread: deque[list[Call]] = deque()  # sent, replies not read yet
        try:
            while (calls := self._todo.get()) is not None:
                if self._conn is None:
                    self._done.put(self._pipeline(calls))
                    continue
                if calls:
                    self._conn.send_packed_command([_pack(calls)], check_health=False)
                unread.append(calls)
                if len(unread) > 1:  # the batch before this one
                    self._read(unread, 1)
            self._read(unread, len(unread))
        except BaseException as exc:  # raised in the main thread
            self._done.put(exc)

    def _read(self, unread: deque[list[Call]], count: int) -> None:
        """Reads and reports the replies of the `count` oldest batches of `unread`."""
        for _ in range(count):
            calls = unread[0]
            replies = [self._reply() for _ in calls]
            if None in replies:  # the later batches were sent too: all must answer first
                later = [[self._reply() for _ in c] for c in islice(unread, 1, None)]
                self._recover([replies, *later], unread)
                return
            unread.popleft()
            self._done.put(_counts(replies))

    def _recover(self, replies: list[list[Any]], unread: deque[list[Call]]) -> None:
        """Every sent call has answered, some with NOSCRIPT (None): load the script and send
        again every call from the first NOSCRIPT on; then report every batch of `unread`."""
        calls = [call for batch in unread for call in batch]
        flat = [reply for batch in replies for reply in batch]
        ok = [reply is not None for reply in flat]
        for _ in range(self.ROUNDS):
            if all(ok):
                break
            self._client.script_load(self._source)
            first = ok.index(False)
            self._conn.send_packed_command([_pack(calls[first:])], check_health=False)
            for i in range(first, len(calls)):
                reply = self._reply()
                ok[i] = reply is not None
                if flat[i] is None:
                    flat[i] = reply  # counted once: the first time it ran
        else:
            if not all(ok):
                raise NoScriptError("the store keeps losing the import script")
        start = 0
        while unread:
            n = len(unread.popleft())
            self._done.put(_counts(flat[start : start + n]))
            start += n

    def _reply(self) -> Any:
        """One call's reply; None for NOSCRIPT (the call did not run)."""
        try:
            return self._conn.read_response()
        except NoScriptError:
            return None

    def _pipeline(self, calls: list[Call]) -> tuple[int, int]:
        """One batch on a cluster; after NOSCRIPT the whole batch again (as above, in order)."""
        for attempt in range(2):
            try:
                with self._client.pipeline(transaction=False) as pipe:
                    for name, *rest in calls:  # the cluster pipeline wants a str name
                        pipe.execute_command(name.decode(), *rest)  # type: ignore[no-untyped-call]
                    return _counts(pipe.execute())
            except NoScriptError:
                if attempt:
                    raise
                self._client.script_load(self._source)
        raise AssertionError("unreachable")


def _counts(replies: list[Any]) -> tuple[int, int]:
    """(changed, unchanged) summed over script replies (None: a call that never ran)."""
    changed = unchanged = 0
    for reply in replies:
        if reply is not None:
            changed += int(reply[0])
            unchanged += int(reply[1])
    return changed, unchanged


def _pack(calls: list[Call]) -> bytes:
    return b"".join([pack(call) for call in calls])  # hiredis, in C
