"""`omnistock import`: CSV and NDJSON snapshots set positions, a re-run changes nothing,
rejected rows are named by line, an interrupted run resumes after its checkpoint, and the
embedded store is used (or refused clearly) when no URL is given."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from app import keys
from app.cli import main
from app.domain.importer import (
    Checkpoint,
    Importer,
    ImportRun,
    Rejected,
    SnapshotReader,
    fingerprint,
)
from app.store.embedded import EmbeddedStore, free_port
from tests.conftest import seed
from tests.importer.helpers import committed_batches, failed_fcalls


@pytest.fixture
def use_store(monkeypatch: pytest.MonkeyPatch, store_url: str) -> None:
    monkeypatch.setenv("OMNISTOCK_REDIS_URL", store_url)


async def position(client: httpx.AsyncClient, sku: str, location: str) -> dict[str, Any] | None:
    positions = (await client.get(f"/v1/stock/{sku}")).json()["positions"]
    return next((p for p in positions if p["location"] == location), None)


async def events_of(redis: Redis, sku: str) -> list[dict[str, str]]:
    entries: Any = await redis.xrange(keys.events(keys.partition_of(sku)))
    return [fields for _, fields in entries if fields["sku"] == sku]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run(*argv: str) -> int:
    return main(["import", *argv, "--quiet"])


Rejecting = Callable[[str, str], tuple[Path, str]]


@pytest.fixture
def rejecting(use_store: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Rejecting:
    """Import `text` from a file `name`: exit 1 (rows rejected); the file and stderr."""

    def rejected(name: str, text: str) -> tuple[Path, str]:
        path = write(tmp_path, name, text)
        assert run(str(path)) == 1
        return path, capsys.readouterr().err

    return rejected


CSV = "sku,location,on_hand,safety_stock\nA-1,dc,10,2\nA-1,store-a,4,\nB-2,dc,7,0\n"


async def test_a_csv_snapshot_sets_every_position(
    client: httpx.AsyncClient, use_store: None, tmp_path: Path
) -> None:
    await seed(client)
    assert run(str(write(tmp_path, "snap.csv", CSV))) == 0
    assert await position(client, "A-1", "dc") == {
        "location": "dc",
        "on_hand": 10,
        "held": 0,
        "committed": 0,
        "safety_stock": 2,
        "available": 8,
    }
    assert (await position(client, "A-1", "store-a") or {})["on_hand"] == 4
    assert (await position(client, "B-2", "dc") or {})["on_hand"] == 7


async def test_an_ndjson_snapshot_keeps_safety_stock_when_the_row_has_none(
    client: httpx.AsyncClient, use_store: None, tmp_path: Path
) -> None:
    await seed(client, {("A-1", "dc"): 1})
    await client.put("/v1/stock/A-1/dc", json={"on_hand": 1, "safety_stock": 3})
    lines = [
        {"sku": "A-1", "location": "dc", "on_hand": 9},
        {"sku": "A-1", "location": "store-a", "on_hand": 5, "safety_stock": None},
    ]
    path = write(tmp_path, "snap.ndjson", "".join(orjson.dumps(x).decode() + "\n" for x in lines))
    assert run(str(path)) == 0
    assert await position(client, "A-1", "dc") == {
        "location": "dc",
        "on_hand": 9,
        "held": 0,
        "committed": 0,
        "safety_stock": 3,
        "available": 6,
    }
    assert (await position(client, "A-1", "store-a") or {})["safety_stock"] == 0


async def test_held_and_committed_units_are_untouched(
    client: httpx.AsyncClient, use_store: None, tmp_path: Path
) -> None:
    await seed(client, {("A-1", "dc"): 10})
    r = await client.post("/v1/holds", json={"lines": [{"sku": "A-1", "quantity": 3}]})
    assert r.status_code == 201, r.text
    assert run(str(write(tmp_path, "snap.csv", "sku,location,on_hand\nA-1,dc,20\n"))) == 0
    assert await position(client, "A-1", "dc") == {
        "location": "dc",
        "on_hand": 20,
        "held": 3,
        "committed": 0,
        "safety_stock": 0,
        "available": 17,
    }


async def test_rerunning_the_same_file_changes_nothing_and_emits_no_event(
    client: httpx.AsyncClient,
    use_store: None,
    tmp_path: Path,
    redis: Redis,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await seed(client)
    path = write(tmp_path, "snap.csv", CSV)
    assert run(str(path)) == 0
    events = await events_of(redis, "A-1")
    capsys.readouterr()
    assert main(["import", str(path), "--quiet", "--json"]) == 0
    summary = orjson.loads(capsys.readouterr().out)
    assert (summary["changed"], summary["unchanged"]) == (0, 3)
    assert await events_of(redis, "A-1") == events
    assert (await position(client, "A-1", "dc") or {})["on_hand"] == 10


async def test_every_changed_position_emits_a_stock_imported_event(
    client: httpx.AsyncClient, use_store: None, tmp_path: Path, redis: Redis
) -> None:
    await seed(client)
    assert run(str(write(tmp_path, "snap.csv", "sku,location,on_hand\nA-1,dc,10\n"))) == 0
    (event,) = await events_of(redis, "A-1")
    assert event["type"] == "stock.imported"
    assert (event["location"], event["on_hand"], event["available"]) == ("dc", "10", "10")
    (change,) = orjson.loads(event["channels"])
    assert change == {
        "channel": "web",
        "available_before": 0,
        "available_after": 10,
        "status_before": "out_of_stock",
        "status_after": "in_stock",
    }


async def test_an_import_event_has_the_fields_of_a_stock_set_event(
    client: httpx.AsyncClient, use_store: None, tmp_path: Path, redis: Redis
) -> None:
    stock = {("A-1", "dc"): 3, ("A-1", "store-a"): 5, ("B-2", "dc"): 3, ("B-2", "store-a"): 5}
    await seed(client, stock)
    await client.put("/v1/stock/A-1/dc", json={"on_hand": 12, "safety_stock": 1})
    snapshot = "sku,location,on_hand,safety_stock\nB-2,dc,12,1\n"
    assert run(str(write(tmp_path, "snap.csv", snapshot))) == 0
    by_api = (await events_of(redis, "A-1"))[-1]
    by_import = (await events_of(redis, "B-2"))[-1]
    assert by_api.pop("type") == "stock.set"
    assert by_import.pop("type") == "stock.imported"
    for fields in (by_api, by_import):
        fields.pop("sku")
        fields.pop("at")
    # The same change (dc: 3 -> 12, safety 1, next to 5 at store-a) for two skus.
    assert orjson.loads(by_api.pop("channels")) == orjson.loads(by_import.pop("channels"))
    assert by_api == by_import


async def test_an_import_event_reports_channel_figures_under_the_channel_rules(
    client: httpx.AsyncClient, use_store: None, tmp_path: Path, redis: Redis
) -> None:
    await seed(client, {("A-1", "store-a"): 5, ("B-2", "store-a"): 5})
    for channel, rule in (
        ("market", {"buffer": {"units": 4}}),
        ("outlet", {"buffer": {"percent": 50}, "exclude_skus": ["B-2"]}),
    ):
        r = await client.put(f"/v1/channels/{channel}", json={"locations": ["dc"], **rule})
        assert r.status_code == 200, r.text
    snapshot = "sku,location,on_hand\nA-1,dc,9\nB-2,dc,9\n"
    assert run(str(write(tmp_path, "snap.csv", snapshot))) == 0
    figures = {}
    for sku in ("A-1", "B-2"):
        (event,) = [e for e in await events_of(redis, sku) if e["type"] == "stock.imported"]
        figures[sku] = {c["channel"]: c["available_after"] for c in orjson.loads(event["channels"])}
    assert figures == {
        "A-1": {"web": 14, "market": 5, "outlet": 4},  # 9 - 4; 9 - 4.5 kept (-> 5)
        "B-2": {"web": 14, "market": 5},  # outlet excludes B-2: it never moves there
    }
    for sku, channels in figures.items():  # as the API answers
        for channel, n in channels.items():
            r = await client.get(f"/v1/availability/{sku}", params={"channel": channel})
            assert r.json()["available"] == n


async def test_an_import_below_held_units_emits_a_shortfall(
    client: httpx.AsyncClient, use_store: None, tmp_path: Path, redis: Redis
) -> None:
    await seed(client, {("A-1", "dc"): 10})
    r = await client.post("/v1/holds", json={"lines": [{"sku": "A-1", "quantity": 6}]})
    hold_id = r.json()["id"]
    assert run(str(write(tmp_path, "snap.csv", "sku,location,on_hand\nA-1,dc,2\n"))) == 0
    shortfall = (await events_of(redis, "A-1"))[-1]
    assert shortfall["type"] == "shortfall"
    assert orjson.loads(shortfall["holds"]) == [hold_id]


async def test_rejected_rows_are_named_by_line_and_the_rest_apply(
    client: httpx.AsyncClient, rejecting: Rejecting
) -> None:
    await seed(client)
    text = (
        "sku,location,on_hand\n"
        "A-1,dc,10\n"
        "A-1,dc,ten\n"
        "B 2,dc,1\n"
        "C-3,nowhere,1\n"
        "D-4,dc\n"
        "E-5,store-a,5\n"
    )
    path, err = rejecting("snap.csv", text)
    assert f"{path}:3: on_hand must be an integer" in err
    assert f"{path}:4: sku must be" in err
    assert f"{path}:5: location 'nowhere' is not registered" in err
    assert f"{path}:6: expected 3 fields, got 2" in err
    assert ":2:" not in err and ":7:" not in err
    assert (await position(client, "A-1", "dc") or {})["on_hand"] == 10
    assert (await position(client, "E-5", "store-a") or {})["on_hand"] == 5


async def test_ndjson_rows_with_wrong_types_or_unknown_fields_are_rejected(
    client: httpx.AsyncClient, rejecting: Rejecting
) -> None:
    await seed(client)
    text = (
        '{"sku": "A-1", "location": "dc", "on_hand": "5"}\n'
        '{"sku": "A-1", "location": "dc", "on_hand": 5, "safety_stok": 1}\n'
        '{"sku": "A-1", "location": "dc", "on_hand": 5, "safety_stock": -1}\n'
        "[1, 2]\n"
        "\n"
        '{"sku": "A-1", "location": "dc", "on_hand": 5}\n'
    )
    path, err = rejecting("snap.jsonl", text)
    assert f"{path}:1: on_hand must be an integer" in err
    assert f"{path}:2: unknown fields: safety_stok" in err
    assert f"{path}:3: safety_stock must be" in err
    assert f"{path}:4: not a JSON object" in err
    assert (await position(client, "A-1", "dc") or {})["on_hand"] == 5


async def test_a_csv_without_the_required_header_is_refused(
    use_store: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(str(write(tmp_path, "snap.csv", "A-1,dc,10\n"))) == 2
    assert "header must name sku, location, on_hand" in capsys.readouterr().err


async def test_an_interrupted_import_resumes_after_its_checkpoint(
    client: httpx.AsyncClient, use_store: None, tmp_path: Path
) -> None:
    await seed(client)
    path = write(tmp_path, "snap.csv", CSV)
    # A run that died after the store acknowledged lines 1-2 (the header and A-1 at dc).
    offset = len("sku,location,on_hand,safety_stock\nA-1,dc,10,2\n")
    Checkpoint(
        tmp_path / "snap.csv.checkpoint", fingerprint(path), "csv", line=2, offset=offset
    ).save()
    assert run(str(path)) == 0
    assert await position(client, "A-1", "dc") is None  # not read again
    assert (await position(client, "A-1", "store-a") or {})["on_hand"] == 4
    assert (await position(client, "B-2", "dc") or {})["on_hand"] == 7
    assert not (tmp_path / "snap.csv.checkpoint").exists()


async def test_a_checkpoint_of_another_file_is_ignored(
    client: httpx.AsyncClient, use_store: None, tmp_path: Path
) -> None:
    await seed(client)
    path = write(tmp_path, "snap.csv", CSV)
    Checkpoint(tmp_path / "snap.csv.checkpoint", "0" * 64, "csv", line=3, offset=60).save()
    assert run(str(path)) == 0
    assert (await position(client, "A-1", "dc") or {})["on_hand"] == 10


def test_the_checkpoint_follows_each_acknowledged_batch(store_url: str, tmp_path: Path) -> None:
    rows = "".join(f"S-{i},dc,{i}\n" for i in range(10))
    path = write(tmp_path, "snap.csv", "sku,location,on_hand\n" + rows)
    committed = committed_batches(store_url, path, Importer, SnapshotReader, "csv")
    assert committed == [4, 7, 10, 11]


async def test_without_a_url_it_imports_into_the_embedded_store_of_the_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    with EmbeddedStore(data, fsync="everysec", supervise=False) as store:
        r = SyncRedis.from_url(store.url)
        r.hset(keys.LOCATIONS, "dc", orjson.dumps({"priority": 1}))
        r.close()
    monkeypatch.delenv("OMNISTOCK_REDIS_URL", raising=False)
    monkeypatch.setenv("OMNISTOCK_DATA_DIR", str(data))
    assert run(str(write(tmp_path, "snap.csv", "sku,location,on_hand\nA-1,dc,10\n"))) == 0
    with EmbeddedStore(data, fsync="everysec", supervise=False) as store:
        r = SyncRedis.from_url(store.url, decode_responses=True)
        assert r.hget(keys.position(keys.partition_of("A-1"), "A-1"), "dc") == "10:0:0:0"
        r.close()


async def test_a_data_dir_held_by_a_running_service_imports_into_its_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    monkeypatch.delenv("OMNISTOCK_REDIS_URL", raising=False)
    monkeypatch.setenv("OMNISTOCK_DATA_DIR", str(data))
    path = write(tmp_path, "snap.csv", "sku,location,on_hand\nA-1,dc,10\n")
    with EmbeddedStore(data, fsync="everysec", supervise=False) as running:
        r = SyncRedis.from_url(running.url, decode_responses=True)
        r.hset(keys.LOCATIONS, "dc", orjson.dumps({"priority": 1}))
        assert run(str(path)) == 0
        assert r.hget(keys.position(keys.partition_of("A-1"), "A-1"), "dc") == "10:0:0:0"
        r.close()
    err = capsys.readouterr().err
    assert "a running `omnistock serve` holds this data directory; importing into its store" in err


async def test_the_store_can_be_named_with_redis_url(
    client: httpx.AsyncClient,
    store_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    await seed(client)
    monkeypatch.delenv("OMNISTOCK_REDIS_URL", raising=False)
    monkeypatch.setenv("OMNISTOCK_DATA_DIR", str(tmp_path / "no-such-dir"))
    path = write(tmp_path, "snap.csv", "sku,location,on_hand\nA-1,dc,6\n")
    assert run(str(path), "--redis-url", store_url) == 0
    assert (await position(client, "A-1", "dc") or {})["on_hand"] == 6
    assert not (tmp_path / "no-such-dir").exists()


def test_an_unreachable_store_is_exit_3_without_its_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "snap.csv", "sku,location,on_hand\nA-1,dc,6\n")
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    assert run(str(path), "--redis-url", url) == 3
    err = capsys.readouterr().err
    assert "store unreachable" in err
    assert "s3cret" not in err


async def test_progress_goes_to_stderr_and_the_summary_to_stdout(
    client: httpx.AsyncClient,
    use_store: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await seed(client)
    assert main(["import", str(write(tmp_path, "snap.csv", CSV))]) == 0
    out, err = capsys.readouterr()
    assert "100.0%" in err and "3 rows" in err
    assert out.startswith("imported 3 rows in ")
    assert "3 changed, 0 unchanged, 0 rejected" in out


def grouped(reader: SnapshotReader, size: int) -> tuple[dict[bytes, list[Any]], list[Any]]:
    """Rows per sku and rejections, as the batches of `size` lines give them."""
    rows: dict[bytes, list[Any]] = {}
    rejected = []
    for batch in reader.batches(size=size):
        for by_sku in batch.skus.values():
            for sku, flat in by_sku.items():
                rows.setdefault(sku, []).extend(
                    (loc, int(qty), b"" if sf in (b"", "") else int(sf))
                    for loc, qty, sf in zip(flat[::3], flat[1::3], flat[2::3], strict=True)
                )
        rejected += [(r.line, r.reason) for r in batch.rejected]
    return rows, rejected


def one_by_one(reader: SnapshotReader) -> tuple[dict[bytes, list[Any]], list[Any]]:
    """The same from the per-line parser."""
    rows: dict[bytes, list[Any]] = {}
    rejected = []
    for item, _ in reader.rows():
        if isinstance(item, Rejected):
            rejected.append((item.line, item.reason))
        else:
            safety = b"" if item.safety_stock is None else item.safety_stock
            row = (item.location.encode(), item.on_hand, safety)
            rows.setdefault(item.sku.encode(), []).append(row)
    return rows, rejected


QUIRKY_CSV = [
    "A-1,dc,10,2",
    "A-1,dc,007,0",  # leading zeros: valid, the value is 7
    "A-2,store-a,-0,-0",
    '"A-3","dc","5",""',
    "A-4,dc,1000000000000,1000000000000",
    "A-4,dc,-1000000000000,0",
    "A-5,dc,1000000000001,0",
    "A-5,dc,1,-1",
    "A-6,nowhere,1,0",
    "A-7,dc,1\r",
    "",
    "   ",
    "A-8,dc,3,",
    "A 9,dc,3,1",
    '"A-10,dc,3,1',
    "A-11,dc,3,1,9",
    "A-12,dc\x00,3,1",
    "A-13,dc,3.5,1",
    "A-14,dc,3,1\r",
    "Ä-15,dc,3,1",
]


@pytest.mark.parametrize("size", [1, 3, 1000])
@pytest.mark.parametrize(
    "header", ["sku,location,on_hand,safety_stock", "on_hand,sku,safety_stock,location"]
)
def test_batches_check_rows_exactly_as_the_per_line_parser(
    tmp_path: Path, size: int, header: str
) -> None:
    """The batch fast paths take only what the per-line rules take, with the same values."""
    names = header.split(",")
    lines = []
    for text in QUIRKY_CSV:
        fields = text.split(",")
        if len(fields) == 4 and names[0] != "sku":
            by_name = dict(zip(["sku", "location", "on_hand", "safety_stock"], fields, strict=True))
            text = ",".join(by_name[n] for n in names)
        lines.append(text)
    path = tmp_path / "snap.csv"
    path.write_bytes((header + "\n" + "\n".join(lines)).encode())
    with open(path, "rb") as fh:
        fast = grouped(SnapshotReader(fh, "csv", {"dc", "store-a"}), size)
    with open(path, "rb") as fh:
        slow = one_by_one(SnapshotReader(fh, "csv", {"dc", "store-a"}))
    assert fast == slow
    assert len(slow[0]) >= 5 and len(slow[1]) >= 5  # both kinds of rows were there


def test_a_csv_without_safety_stock_and_ndjson_batches_match_the_per_line_parser(
    tmp_path: Path,
) -> None:
    csv = tmp_path / "snap.csv"
    csv.write_text("location,on_hand,sku\ndc,1,A\nstore-a,2,A\nnowhere,3,B\ndc,x,C\ndc,4,D\n")
    docs = [
        {"sku": "A", "location": "dc", "on_hand": 1},
        {"sku": "A", "location": "dc", "on_hand": 2, "safety_stock": None},
        {"sku": "B", "location": "dc", "on_hand": True},
        {"sku": "B", "location": "dc", "on_hand": 2**40},
        {"sku": "C", "location": "store-a", "on_hand": -3, "safety_stock": 4},
        {"sku": "C", "location": "dc\n", "on_hand": 1},
        {"sku": 5, "location": "dc", "on_hand": 1},
        {"sku": "D", "location": "dc", "on_hand": 1, "extra": 1},
        {"sku": "E", "location": "dc", "on_hand": 1.0},
    ]
    ndjson = tmp_path / "snap.ndjson"
    ndjson.write_bytes(b"\n".join(orjson.dumps(d) for d in docs) + b"\n\n[1]\n{\n")
    for path, fmt in ((csv, "csv"), (ndjson, "ndjson")):
        for size in (1, 2, 100):
            with open(path, "rb") as fh:
                fast = grouped(SnapshotReader(fh, fmt, {"dc", "store-a", "dc\n"}), size)
            with open(path, "rb") as fh:
                slow = one_by_one(SnapshotReader(fh, fmt, {"dc", "store-a", "dc\n"}))
            assert fast == slow, (fmt, size)


def test_a_store_that_loses_the_library_mid_import_gets_every_row_once_in_order(
    store_url: str, tmp_path: Path
) -> None:
    """FUNCTION FLUSH while batches are in flight: the calls answered "Function not found"
    are sent again after the library is loaded, in order, so each position ends with its last
    row."""
    rows = [f"S-{i % 7},dc,{i}\n" for i in range(60)]  # each position set several times
    path = write(tmp_path, "snap.csv", "sku,location,on_hand\n" + "".join(rows))
    sync = SyncRedis.from_url(store_url)
    sync.hset(keys.LOCATIONS, "dc", orjson.dumps({"priority": 1}))
    failed_before = failed_fcalls(sync)
    flushes = 0

    def flush(offset: int, rows: int) -> None:
        nonlocal flushes
        if rows in (6, 24):  # after the 2nd and the 8th batch was handed over
            sync.function_flush()
            flushes += 1

    committed: list[int] = []
    with open(path, "rb") as fh:
        stats = Importer(sync, event_retention_seconds=60, batch_rows=3).run(
            SnapshotReader(fh, "csv", {"dc"}),
            ImportRun(
                on_reject=lambda rejected: None,
                on_commit=lambda line, offset, rejected: committed.append(line),
                on_progress=flush,
            ),
        )
    not_run = failed_fcalls(sync) - failed_before
    final = {
        f"S-{s}": sync.hget(keys.position(keys.partition_of(f"S-{s}"), f"S-{s}"), "dc")
        for s in range(7)
    }
    sync.close()
    assert flushes == 2 and not_run > 0
    assert committed == list(range(4, 62, 3))  # every batch (lines 2-61), in order
    assert (stats.rows, stats.changed + stats.unchanged) == (60, 60)
    last = {f"S-{i % 7}": i for i in range(60)}
    assert final == {sku: f"{qty}:0:0:0".encode() for sku, qty in last.items()}
