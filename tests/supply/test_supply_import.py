"""`omnistock import --supply`: a supply snapshot from the ERP, streamed with line-numbered
rejects, progress and resume as a stock snapshot."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest

from app.cli import main
from tests.conftest import seed
from tests.supply.helpers import days, supply_lines


@pytest.fixture
def use_store(monkeypatch: pytest.MonkeyPatch, store_url: str) -> None:
    monkeypatch.setenv("OMNISTOCK_REDIS_URL", store_url)


def run(*argv: str) -> int:
    return main(["import", "--supply", *argv, "--quiet"])


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
    path = tmp_path / "supply.csv"
    path.write_text(
        "sku,location,supply_id,type,quantity,eta\n"
        f"S-1,dc,po-1,purchase_order,10,{days(5)}\n"
        f"S-1,store-a,po-2,in_transit,3,{days(9)}\n"
    )
    assert run(str(path), "--json") == 0
    assert main(["import", "--supply", str(path), "--quiet", "--json"]) == 0
    assert [x["supply_id"] for x in await supply_lines(client, "S-1")] == ["po-1", "po-2"]
    log = (await client.get("/v1/events/log", params={"sku": "S-1"})).json()["events"]
    assert [e["type"] for e in log] == ["supply.created", "supply.created"]
