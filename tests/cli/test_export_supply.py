"""`omnistock export --supply`: every supply line out, and with `--for-import` in the form
`omnistock import --supply` reads, so the lines can be copied to a fresh store."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from redis import Redis as SyncRedis

from app import keys
from tests.cli.conftest import seed
from tests.supply.helpers import days

SKUS = ["SKU-1", "SKU-2", "SKU-3"]  # SKU-3 has supply and no position


def put_supply(
    api: httpx.Client, sku: str, loc: str, sid: str, qty: int, eta: str, **kw: Any
) -> None:
    body = {"type": kw.pop("type", "purchase_order"), "quantity": qty, "eta": eta, **kw}
    r = api.put(f"/v1/supply/{sku}/{loc}/{sid}", json=body)
    assert r.status_code == 200, r.text


def supplied(api: httpx.Client) -> None:
    """Positions, and supply lines of every kind: three types, a reference that needs quoting
    in CSV, an eta moved, a line partly received, a sku with no position."""
    seed(api, {("SKU-1", "dc-north"): 0, ("SKU-1", "store-12"): 2, ("SKU-2", "store-12"): 0})
    put_supply(api, "SKU-1", "dc-north", "PO-1", 20, days(9), reference='PO 1, "rush"')
    put_supply(api, "SKU-1", "dc-north", "PO-1", 20, days(6), reference='PO 1, "rush"')
    put_supply(api, "SKU-1", "store-12", "ASN-7", 4, days(2), type="in_transit")
    put_supply(api, "SKU-2", "dc-north", "PO-2", 12, days(4))
    receipt = {"id": "grn-1", "type": "receipt", "sku": "SKU-2", "location": "dc-north"}
    r = api.post(
        "/v1/stock/events", json={"events": [{**receipt, "quantity": 5, "supply_id": "PO-2"}]}
    )
    assert r.json()["results"][0]["status"] == "applied", r.text
    put_supply(api, "SKU-3", "store-12", "WO-3", 30, days(20), type="production")


def lines_from_api(api: httpx.Client) -> list[dict[str, Any]]:
    return [line for sku in SKUS for line in api.get(f"/v1/supply/{sku}").json()["lines"]]


def availability(api: httpx.Client) -> dict[tuple[str, str], tuple[Any, ...]]:
    out = {}
    for sku in SKUS:
        for scope in ({"channel": "web"}, {"location": "dc-north"}, {"location": "store-12"}):
            body = api.get(f"/v1/availability/{sku}", params=scope).json()
            what = (body["available"], body["incoming"], body["next_available_at"])
            out[(sku, str(scope))] = what
    return out


def by_line(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r["sku"], r["location"], r["supply_id"]))


@pytest.fixture
def fresh(serve_app: Any, store_url: str) -> Iterator[tuple[str, httpx.Client]]:
    """Another store (database 1 of the suite's server, emptied with the first) and a
    service on it: (its URL, a client of the service)."""
    url = store_url.rsplit("/", 1)[0] + "/1"
    with httpx.Client(base_url=serve_app(redis_url=url), timeout=5) as api:
        yield url, api


def test_export_supply_writes_every_line_as_the_api_lists_it(
    api: httpx.Client, cli: Any, store_url: str
) -> None:
    supplied(api)
    hold = {"channel": "web", "allow_backorder": True, "lines": [{"sku": "SKU-1", "quantity": 5}]}
    assert api.post("/v1/holds", json=hold).status_code == 201  # 2 on hand, 3 promised
    result = cli("export", "--supply", "--redis-url", store_url, "--quiet")
    assert result.code == 0, result.err
    rows = [orjson.loads(line) for line in result.out.splitlines()]
    assert by_line(rows) == by_line(lines_from_api(api))
    assert [(r["supply_id"], r["promised"]) for r in rows if r["promised"]] == [("ASN-7", 3)]


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_export_supply_for_import_round_trips_to_a_fresh_store(
    api: httpx.Client,
    cli: Any,
    store_url: str,
    fresh: tuple[str, httpx.Client],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fmt: str,
) -> None:
    supplied(api)
    positions, supply = tmp_path / f"stock.{fmt}", tmp_path / f"supply.{fmt}"
    assert cli("export", "--redis-url", store_url, "--for-import", "-o", positions).code == 0
    result = cli("export", "--supply", "--redis-url", store_url, "--for-import", "-o", supply)
    assert result.code == 0, result.err
    assert "exported 4 supply lines of 3 skus" in result.err
    url, other = fresh
    seed(other)
    monkeypatch.setenv("OMNISTOCK_REDIS_URL", url)
    assert cli("import", positions, "--no-checkpoint", "--quiet").code == 0
    result = cli("import", "--supply", supply, "--no-checkpoint", "--quiet")
    assert result.code == 0, result.err
    assert lines_from_api(other) == lines_from_api(api)
    assert availability(other) == availability(api)
    dated = [what for what in availability(api).values() if what[2] is not None]
    assert len(dated) == 3  # SKU-1 at dc-north, SKU-3 in web and at store-12: dates compared


def test_export_supply_as_csv_has_the_import_header_and_quotes_a_reference(
    api: httpx.Client, cli: Any, store_url: str
) -> None:
    supplied(api)
    result = cli("export", "--supply", "--for-import", "--format", "csv", "--redis-url", store_url)
    assert result.code == 0, result.err
    assert result.out.splitlines()[0] == "sku,location,supply_id,type,quantity,eta,reference"
    assert ',"PO 1, ""rush"""\n' in result.out
    rows = list(csv.DictReader(io.StringIO(result.out)))
    assert [
        (r["supply_id"], r["quantity"], r["reference"]) for r in rows if r["sku"] == "SKU-2"
    ] == [("PO-2", "7", "")]


def test_export_supply_of_one_location_writes_only_its_lines(
    api: httpx.Client, cli: Any, store_url: str
) -> None:
    supplied(api)
    result = cli(
        "export", "--supply", "--location", "store-12", "--redis-url", store_url, "--quiet"
    )
    rows = [orjson.loads(line) for line in result.out.splitlines()]
    assert sorted((r["sku"], r["supply_id"]) for r in rows) == [
        ("SKU-1", "ASN-7"),
        ("SKU-3", "WO-3"),
    ]


def test_an_overdue_supply_line_is_exported_and_counted_on_stderr(
    api: httpx.Client, cli: Any, store_url: str
) -> None:
    seed(api)
    put_supply(api, "SKU-1", "dc-north", "PO-1", 3, days(2))
    late = {"t": "purchase_order", "q": 4, "e": 1_000, "r": "", "c": 1_000, "u": 1_000}
    sync = SyncRedis.from_url(store_url)
    sync.hset(keys.supply(keys.partition_of("SKU-1"), "SKU-1"), "dc-north|PO-0", orjson.dumps(late))
    sync.close()
    result = cli("export", "--supply", "--for-import", "--redis-url", store_url, "--quiet")
    assert result.code == 0, result.err
    assert [orjson.loads(x)["supply_id"] for x in result.out.splitlines()] == ["PO-0", "PO-1"]
    assert "1 supply lines are overdue" in result.err


def test_a_reference_with_a_line_break_cannot_be_a_csv_row(
    api: httpx.Client, cli: Any, store_url: str, tmp_path: Path
) -> None:
    seed(api)
    put_supply(api, "SKU-1", "dc-north", "PO-1", 3, days(2), reference="line 1\nline 2")
    out = tmp_path / "supply.csv"
    result = cli("export", "--supply", "--redis-url", store_url, "-o", out)
    assert result.code == 2
    assert "line break" in result.err and "ndjson" in result.err
    assert list(tmp_path.iterdir()) == []
