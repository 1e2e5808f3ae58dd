"""`omnistock export`: every position out as NDJSON or CSV, straight from the store."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from app.store.embedded import free_port
from tests.cli.conftest import seed

ROOT = Path(__file__).resolve().parents[2]

STOCK = {
    ("SKU-1", "dc-north"): 10,
    ("SKU-1", "store-12"): 4,
    ("SKU-2", "store-12"): 7,
    ("SKU-3", "dc-north"): 0,
}


def positions_from_api(api: httpx.Client, skus: list[str]) -> list[dict[str, Any]]:
    rows = []
    for sku in skus:
        for p in api.get(f"/v1/stock/{sku}").json()["positions"]:
            rows.append({"sku": sku, **p})
    return sorted(rows, key=lambda r: (r["sku"], r["location"]))


def ndjson(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in text.splitlines()]


def by_key(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r["sku"], r["location"]))


def test_export_writes_every_position_with_all_its_counters(
    api: httpx.Client, cli: Any, store_url: str
) -> None:
    seed(api, STOCK)
    api.post("/v1/holds", json={"lines": [{"sku": "SKU-1", "quantity": 3, "location": "store-12"}]})
    result = cli("export", "--redis-url", store_url, "--quiet")
    assert result.code == 0, result.err
    assert by_key(ndjson(result.out)) == positions_from_api(api, ["SKU-1", "SKU-2", "SKU-3"])
    assert len(ndjson(result.out)) == 4


def test_export_as_csv_has_a_header_and_one_row_per_position(
    api: httpx.Client, cli: Any, store_url: str
) -> None:
    seed(api, STOCK)
    result = cli("export", "--redis-url", store_url, "--format", "csv", "--quiet")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "sku,location,on_hand,held,committed,safety_stock,available"
    rows = [
        {k: (v if k in ("sku", "location") else int(v)) for k, v in r.items()}
        for r in csv.DictReader(io.StringIO(result.out))
    ]
    assert by_key(rows) == positions_from_api(api, ["SKU-1", "SKU-2", "SKU-3"])


def test_export_to_a_csv_file_picks_the_format_from_its_name(
    api: httpx.Client, cli: Any, store_url: str, tmp_path: Path
) -> None:
    seed(api, STOCK)
    out = tmp_path / "snapshot.csv"
    result = cli("export", "--redis-url", store_url, "-o", out, "--quiet")
    assert (result.code, result.out) == (0, "")
    assert out.read_text().startswith("sku,location,on_hand,")
    assert len(out.read_text().splitlines()) == 1 + len(STOCK)
    assert list(tmp_path.iterdir()) == [out]  # no partial file left behind


def test_export_for_import_round_trips_through_omnistock_import(
    api: httpx.Client, cli: Any, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(api, STOCK)
    api.put("/v1/stock/SKU-2/store-12", json={"on_hand": 7, "safety_stock": 2})
    before = positions_from_api(api, ["SKU-1", "SKU-2", "SKU-3"])
    snapshot = tmp_path / "snapshot.csv"
    assert cli("export", "--redis-url", store_url, "--for-import", "-o", snapshot).code == 0
    assert snapshot.read_text().splitlines()[0] == "sku,location,on_hand,safety_stock"
    api.put("/v1/stock/SKU-1/dc-north", json={"on_hand": 99, "safety_stock": 5})
    api.put("/v1/stock/SKU-2/store-12", json={"on_hand": 0})
    monkeypatch.setenv("OMNISTOCK_REDIS_URL", store_url)
    result = cli("import", snapshot, "--no-checkpoint", "--quiet")
    assert result.code == 0, result.err
    assert positions_from_api(api, ["SKU-1", "SKU-2", "SKU-3"]) == before


def test_export_of_one_location_writes_only_its_positions(
    api: httpx.Client, cli: Any, store_url: str
) -> None:
    seed(api, STOCK)
    result = cli("export", "--redis-url", store_url, "--location", "store-12", "--quiet")
    assert {(r["sku"], r["location"]) for r in ndjson(result.out)} == {
        ("SKU-1", "store-12"),
        ("SKU-2", "store-12"),
    }


def test_export_reports_progress_and_a_summary_on_stderr_only(
    api: httpx.Client, cli: Any, store_url: str
) -> None:
    seed(api, STOCK)
    result = cli("export", "--redis-url", store_url)
    assert result.code == 0
    assert "export: 256/256 partitions, 4 positions" in result.err
    assert "exported 4 positions of 3 skus as ndjson" in result.err
    assert len(ndjson(result.out)) == 4  # stdout is only data


def test_export_of_an_empty_store_writes_nothing(cli: Any, store_url: str) -> None:
    result = cli("export", "--redis-url", store_url, "--format", "csv", "--quiet")
    assert (result.code, result.out.splitlines()) == (
        0,
        ["sku,location,on_hand,held,committed,safety_stock,available"],
    )


def test_export_from_an_unreachable_store_exits_3_and_writes_no_file(
    cli: Any, tmp_path: Path
) -> None:
    out = tmp_path / "snapshot.ndjson"
    result = cli("export", "--redis-url", f"redis://127.0.0.1:{free_port()}/0", "-o", out)
    assert result.code == 3
    assert "unreachable" in result.err
    assert list(tmp_path.iterdir()) == []


def test_export_into_a_reader_that_stopped_reading_exits_0_quietly(
    api: httpx.Client, store_url: str
) -> None:
    """`omnistock export | head`: the reader is gone before the first row (the pipe's read end
    closed), so the first write fails with a broken pipe: not a store error, not exit 3."""
    seed(api, STOCK)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        export = subprocess.run(
            [sys.executable, "-m", "app", "export", "--redis-url", store_url, "--quiet"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert (export.returncode, export.stderr) == (0, "")


def test_export_never_prints_the_store_password(cli: Any) -> None:
    url = f"redis://:s3cret-pass@127.0.0.1:{free_port()}/0"
    result = cli("export", "--redis-url", url)
    assert result.code == 3
    assert "s3cret-pass" not in result.err


def test_export_of_a_partition_that_does_not_exist_is_a_usage_error(
    cli: Any, store_url: str
) -> None:
    result = cli("export", "--redis-url", store_url, "--partition", "256")
    assert result.code == 2
    assert "no partition 256" in result.err


def test_export_without_a_store_or_data_directory_is_a_usage_error(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OMNISTOCK_REDIS_URL", raising=False)
    result = cli("export", "--data-dir", tmp_path / "missing")
    assert result.code == 2
    assert "no data directory" in result.err


@pytest.mark.slow
def test_export_reads_the_embedded_store_of_a_running_service(
    start_service: Any, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`omnistock export --data-dir` while `omnistock serve` holds the directory uses the
    service's own store (port and password from its store.conf)."""
    data = tmp_path / "data"
    service = start_service(OMNISTOCK_DATA_DIR=str(data))
    with httpx.Client(base_url=service.base_url, timeout=5) as api:
        seed(api, {("SKU-9", "store-12"): 5})
    monkeypatch.delenv("OMNISTOCK_REDIS_URL", raising=False)
    result = cli("export", "--data-dir", data, "--quiet")
    assert result.code == 0, result.err
    assert ndjson(result.out) == [
        {
            "sku": "SKU-9",
            "location": "store-12",
            "on_hand": 5,
            "held": 0,
            "committed": 0,
            "safety_stock": 0,
            "available": 5,
        }
    ]
