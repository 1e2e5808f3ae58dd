"""`omnistock import --supply`: a supply snapshot from the ERP, streamed with line-numbered
rejects, progress and resume as a stock snapshot."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from app import keys
from app.cli import main
from app.domain.checkpoint import Checkpoint, fingerprint
from app.domain.importer import ImportRun
from app.domain.supply_import import SupplyImporter, SupplyReader
from tests.conftest import seed, service_env
from tests.importer.helpers import committed_batches, failed_fcalls
from tests.supply.helpers import backorder, days, ok_supply, supply_lines


@pytest.fixture
def use_store(monkeypatch: pytest.MonkeyPatch, store_url: str) -> None:
    monkeypatch.setenv("OMNISTOCK_REDIS_URL", store_url)


def run(*argv: str) -> int:
    return main(["import", "--supply", *argv, "--quiet"])


CSV_HEADER = "sku,location,supply_id,type,quantity,eta"


def supply_csv(tmp_path: Path, *rows: str, header: str = CSV_HEADER) -> Path:
    """tmp_path/supply.csv: the header, then the rows, a line each."""
    path = tmp_path / "supply.csv"
    path.write_text("".join(f"{line}\n" for line in (header, *rows)))
    return path


async def test_an_ndjson_supply_snapshot_creates_every_line_and_names_bad_lines(
    client: httpx.AsyncClient,
    use_store: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await seed(client)
    rows = [
        {
            "sku": "S-1",
            "location": "dc",
            "supply_id": "po-1",
            "type": "purchase_order",
            "quantity": 10,
            "eta": days(5),
            "reference": "PO 1",
        },
        {
            "sku": "S-1",
            "location": "mars",
            "supply_id": "po-2",
            "type": "purchase_order",
            "quantity": 10,
            "eta": days(5),
        },
        {
            "sku": "S-2",
            "location": "store-a",
            "supply_id": "asn-9",
            "type": "in_transit",
            "quantity": 4,
            "eta": days(2),
        },
        {
            "sku": "S-2",
            "location": "dc",
            "supply_id": "late",
            "type": "production",
            "quantity": 4,
            "eta": days(-2),
        },
    ]
    path = tmp_path / "supply.ndjson"
    path.write_text("".join(orjson.dumps(r).decode() + "\n" for r in rows) + "{oops\n")
    assert run(str(path)) == 1  # rejected rows: exit 1
    err = capsys.readouterr().err
    assert f"{path}:2: location 'mars' is not registered" in err
    assert f"{path}:4: eta: must be after now" in err
    assert f"{path}:5: not a JSON object" in err
    assert [(x["supply_id"], x["quantity"]) for x in await supply_lines(client, "S-1")] == [
        ("po-1", 10)
    ]
    assert [x["supply_id"] for x in await supply_lines(client, "S-2")] == ["asn-9"]


async def test_a_csv_supply_snapshot_run_twice_changes_nothing_the_second_time(
    client: httpx.AsyncClient, use_store: None, tmp_path: Path
) -> None:
    await seed(client)
    path = supply_csv(
        tmp_path,
        f"S-1,dc,po-1,purchase_order,10,{days(5)}",
        f"S-1,store-a,po-2,in_transit,3,{days(9)}",
    )
    assert run(str(path), "--json") == 0
    assert main(["import", "--supply", str(path), "--quiet", "--json"]) == 0
    assert [x["supply_id"] for x in await supply_lines(client, "S-1")] == ["po-1", "po-2"]
    log = (await client.get("/v1/events/log", params={"sku": "S-1"})).json()["events"]
    assert [e["type"] for e in log] == ["supply.created", "supply.created"]


# -- re-runs and resume --------------------------------------------------------------------


def supply_row(sku: str, location: str, supply_id: str, quantity: int, eta_days: float) -> str:
    row = {"sku": sku, "location": location, "supply_id": supply_id, "quantity": quantity}
    row |= {"type": "purchase_order", "eta": days(eta_days)} if quantity else {"type": "in_transit"}
    return orjson.dumps(row).decode() + "\n"


def summary(out: str) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(out.strip().splitlines()[-1])
    return doc


async def supply_event_types(redis: Redis, sku: str) -> list[str]:
    entries: Any = await redis.xrange(keys.events(keys.partition_of(sku)))
    return [
        f["type"] for _, f in entries if f["sku"] == sku and f["type"].startswith(("sup", "pro"))
    ]


async def test_a_rerun_of_a_file_that_cancels_lines_changes_nothing(
    client: httpx.AsyncClient,
    redis: Redis,
    use_store: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A row with quantity 0 says "no such line": after the first run cancelled it, the same
    row is unchanged, not a reject (a resumed run repeats the rows after its checkpoint)."""
    await seed(client)
    await ok_supply(client, "S-1", "dc", "old", 5, days(3))
    path = tmp_path / "supply.ndjson"
    path.write_text(supply_row("S-1", "dc", "old", 0, 0) + supply_row("S-1", "dc", "new", 4, 6))
    assert run(str(path), "--json") == 0
    capsys.readouterr()
    assert run(str(path), "--json") == 0
    assert (summary(capsys.readouterr().out)) | {"seconds": 0, "rows_per_second": 0} == {
        "file": str(path),
        "format": "ndjson",
        "rows": 2,
        "changed": 0,
        "unchanged": 2,
        "rejected": 0,
        "rejected_in_earlier_runs": 0,
        "resumed_after_line": 0,
        "last_line": 2,
        "seconds": 0,
        "rows_per_second": 0,
    }
    assert await supply_event_types(redis, "S-1") == [
        "supply.created",
        "supply.cancelled",
        "supply.created",
    ]


async def test_an_interrupted_supply_import_resumes_after_its_checkpoint(
    client: httpx.AsyncClient, use_store: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed(client)
    first = f"S-1,dc,po-1,purchase_order,10,{days(5)}"
    path = supply_csv(tmp_path, first, f"S-1,dc,po-2,in_transit,3,{days(9)}")
    # A run that died after the store acknowledged lines 1-2 (the header and po-1).
    Checkpoint(
        tmp_path / "supply.csv.checkpoint",
        fingerprint(path),
        "csv",
        line=2,
        offset=len(f"{CSV_HEADER}\n{first}\n"),
    ).save()
    assert run(str(path), "--json") == 0
    assert "resuming after line 2" in capsys.readouterr().err
    assert [x["supply_id"] for x in await supply_lines(client, "S-1")] == ["po-2"]  # not re-read
    assert not (tmp_path / "supply.csv.checkpoint").exists()


async def test_a_run_interrupted_after_the_store_applied_a_batch_resumes_without_applying_it_twice(
    client: httpx.AsyncClient,
    redis: Redis,
    use_store: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The worst moment: the store applied the third batch (a cancel that breaks a promise
    among its rows) and the run stops before its checkpoint is saved. The second run starts
    after the second batch, finds the third one's rows already done (unchanged: no event,
    no promise broken again), applies the rest, and the store ends as one clean run leaves
    it."""
    await seed(client, {("S-1", "dc"): 0})
    await ok_supply(client, "S-1", "dc", "po-0", 5, days(3))
    hold = await backorder(client, [{"sku": "S-1", "quantity": 2}])
    assert hold.status_code == 201, hold.text
    rows = [supply_row("S-1", "dc", f"po-{i}", i, 4 + i) for i in range(1, 7)]
    rows.insert(4, supply_row("S-1", "dc", "po-0", 0, 0))  # line 5: cancels po-0
    rows += [supply_row("S-2", "store-a", f"asn-{i}", 2, 2) for i in range(2)]
    path = tmp_path / "supply.ndjson"
    path.write_text("".join(rows))  # 9 lines: batches of 3 end at lines 3, 6, 9
    saved = Checkpoint.save
    saves = 0

    def save_then_die(self: Checkpoint) -> None:
        nonlocal saves
        saves += 1
        if saves == 2:
            raise KeyboardInterrupt  # batch 2 (lines 4-6) applied, its checkpoint not saved
        saved(self)

    monkeypatch.setattr(Checkpoint, "save", save_then_die)
    assert run(str(path), "--batch-rows", "3") == 1
    err = capsys.readouterr().err
    assert "omnistock import: interrupted" in err
    assert "resume with the same command (after line 3)" in err
    monkeypatch.setattr(Checkpoint, "save", saved)
    assert run(str(path), "--batch-rows", "3", "--json") == 0
    captured = capsys.readouterr()
    assert "resuming after line 3" in captured.err
    done = summary(captured.out)
    assert (done["resumed_after_line"], done["rows"]) == (3, 6)
    assert (done["changed"], done["unchanged"]) == (3, 3)  # lines 4-6 found done
    assert await supply_event_types(redis, "S-1") == [
        "supply.created",  # po-0, through the API
        *["supply.created"] * 4,  # po-1 .. po-4
        "supply.cancelled",  # po-0, once
        "promise_broken",  # once
        *["supply.created"] * 2,  # po-5, po-6
    ]
    # The end state is a clean run's: the whole file once more changes nothing.
    assert run(str(path), "--restart", "--json") == 0
    again = summary(capsys.readouterr().out)
    assert (again["changed"], again["unchanged"], again["rejected"]) == (0, 9, 0)
    lines = {x["supply_id"]: x["quantity"] for x in await supply_lines(client, "S-1")}
    assert lines == {f"po-{i}": i for i in range(1, 7)}
    assert len(await supply_lines(client, "S-2")) == 2


def test_the_supply_checkpoint_follows_each_acknowledged_batch(
    store_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "supply.ndjson"
    path.write_text("".join(supply_row(f"S-{i}", "dc", "po", 1, 3) for i in range(10)))
    committed = committed_batches(store_url, path, SupplyImporter, SupplyReader, "ndjson")
    assert committed == [3, 6, 9, 10]


def test_a_store_that_loses_the_library_mid_supply_import_gets_every_row_once_in_order(
    store_url: str, tmp_path: Path
) -> None:
    """FUNCTION FLUSH between batches: the calls answered "Function not found" are sent again
    after the library is loaded, so the run goes on and each line ends with its last row."""
    rows = [supply_row(f"S-{i % 4}", "dc", "po", i + 1, 3) for i in range(20)]  # 5 rows a line
    path = tmp_path / "supply.ndjson"
    path.write_text("".join(rows))
    sync = SyncRedis.from_url(store_url)
    sync.hset(keys.LOCATIONS, "dc", orjson.dumps({"priority": 1}))
    failed_before = failed_fcalls(sync)

    def flush(offset: int, rows: int) -> None:
        if rows in (3, 12):
            sync.function_flush()

    committed: list[int] = []
    with open(path, "rb") as fh:
        stats = SupplyImporter(sync, event_retention_seconds=60, batch_rows=3).run(
            SupplyReader(fh, "ndjson", {"dc"}),
            ImportRun(
                on_reject=lambda rejected: pytest.fail(str(rejected)),
                on_commit=lambda line, offset, rejected: committed.append(line),
                on_progress=flush,
            ),
        )
    not_run = failed_fcalls(sync) - failed_before
    final = {
        f"S-{s}": orjson.loads(
            sync.hget(keys.supply(keys.partition_of(f"S-{s}"), f"S-{s}"), "dc|po") or b"{}"
        )["q"]
        for s in range(4)
    }
    sync.close()
    assert not_run >= 2
    assert committed == [3, 6, 9, 12, 15, 18, 20]
    assert (stats.rows, stats.changed, stats.unchanged) == (20, 20, 0)
    assert final == {"S-0": 17, "S-1": 18, "S-2": 19, "S-3": 20}


async def test_a_csv_reference_may_be_quoted_with_commas_and_quotes(
    client: httpx.AsyncClient, use_store: None, tmp_path: Path
) -> None:
    await seed(client)
    row = f'S-1,dc,po-1,purchase_order,10,{days(5)},"PO 7, dock ""B"""'
    path = supply_csv(tmp_path, row, header=f"{CSV_HEADER},reference")
    assert run(str(path)) == 0
    (line,) = await supply_lines(client, "S-1")
    assert line["reference"] == 'PO 7, dock "B"'


# -- a real process killed mid-file --------------------------------------------------------


def db_url(store_url: str, db: int) -> str:
    """The suite's store server, another database: a fresh store on the same server."""
    return store_url.rsplit("/", 1)[0] + f"/{db}"


def supply_state(url: str, skus: list[str]) -> dict[str, Any]:
    """Every line of `skus` as stored (without its created / updated times) and the types of
    the supply events each line emitted, in order."""
    sync = SyncRedis.from_url(url, decode_responses=True)
    lines: dict[str, Any] = {}
    for sku in skus:
        stored: Any = sync.hgetall(keys.supply(keys.partition_of(sku), sku))
        for field, raw in stored.items():
            doc = orjson.loads(raw)
            lines[f"{sku}|{field}"] = {k: doc[k] for k in ("t", "q", "e", "r")}
    events: dict[str, list[str]] = {}
    for p in sorted({keys.partition_of(sku) for sku in skus}):
        entries: Any = sync.xrange(keys.events(p))
        for _, f in entries:
            if f["type"].startswith("supply."):
                line = orjson.loads(f["supply"])
                name = f"{f['sku']}|{line['location']}|{line['supply_id']}"
                events.setdefault(name, []).append(f["type"])
    sync.close()
    return {"lines": lines, "events": events}


def prepared(url: str, pre: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store with its locations and the lines of `pre` (the ERP's state before); further
    imports in this process go to it."""
    sync = SyncRedis.from_url(url)
    sync.flushdb()
    for loc in ("dc", "store-a"):
        sync.hset(keys.LOCATIONS, loc, orjson.dumps({"priority": 1}))
    sync.close()
    monkeypatch.setenv("OMNISTOCK_REDIS_URL", url)
    assert run(str(pre), "--no-checkpoint") == 0


@pytest.mark.slow
def test_a_supply_import_killed_mid_file_resumes_and_ends_as_a_clean_run(
    store_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`omnistock import --supply` killed (SIGKILL) part-way through a large file: the second
    run resumes after the checkpoint, each line's events are emitted once over both runs, and
    the store ends exactly as a store that imported the file in one run."""
    skus = [f"K-{i:04d}" for i in range(200)]
    pre = tmp_path / "pre.ndjson"  # lines the file updates or cancels
    pre.write_text("".join(supply_row(sku, "dc", "po", 5, 3) for sku in skus))
    rows = []
    for i, sku in enumerate(skus):
        rows.append(supply_row(sku, "dc", "po", 0 if i % 2 else 7, 0 if i % 2 else 4))
        rows += [supply_row(sku, "store-a", f"asn-{j}", j + 1, 2 + j) for j in range(14)]
    path = tmp_path / "supply.ndjson"  # 3,000 rows
    path.write_text("".join(rows))
    checkpoint = tmp_path / "supply.ndjson.checkpoint"

    killed = db_url(store_url, 0)
    prepared(killed, pre, monkeypatch)
    argv = [sys.executable, "-m", "app", "import", "--supply", str(path), "--batch-rows", "50"]
    proc = subprocess.Popen(
        [*argv, "--quiet"],
        env=service_env(OMNISTOCK_REDIS_URL=killed),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.kill()  # as soon as the first batch is acknowledged: the next is on its way
    proc.wait(10)
    stopped_at = orjson.loads(checkpoint.read_bytes())["line"]
    assert 0 < stopped_at < len(rows), stopped_at

    capsys.readouterr()
    assert run(str(path), "--batch-rows", "50", "--json") == 0
    resumed = capsys.readouterr()
    assert f"resuming after line {stopped_at:,}" in resumed.err
    done = summary(resumed.out)
    assert (done["resumed_after_line"], done["rows"]) == (stopped_at, len(rows) - stopped_at)
    assert not checkpoint.exists()
    after_kill = supply_state(killed, skus)

    clean = db_url(store_url, 1)
    prepared(clean, pre, monkeypatch)
    assert run(str(path), "--no-checkpoint") == 0
    after_clean = supply_state(clean, skus)
    assert len(after_clean["lines"]) == 100 + 200 * 14
    assert after_kill == after_clean
