"""`omnistock import`, `export` and `audit` as subprocesses against a cluster with replicas:
positions, and supply lines (`export --supply` out, `import --supply` back)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.cluster.conftest import skus_on_different_nodes
from tests.cluster.support import LocalCluster, omnistock_cli, serving
from tests.conftest import seed
from tests.supply.helpers import days, ok_supply, put_supply, supply_lines

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


def omnistock(cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return omnistock_cli(cluster.seeds, *args)


async def test_import_export_and_audit_round_trip_on_a_cluster(
    store_cluster: LocalCluster, tmp_path: Path
) -> None:
    store_cluster.flushall()
    async with serving(store_cluster.seeds) as client:
        await seed(client)  # the locations the rows name
    rows = [(f"sku-{i}", loc, i % 17, i % 3) for i in range(600) for loc in ("dc", "store-a")]
    source = tmp_path / "stock.csv"
    source.write_text(
        "sku,location,on_hand,safety_stock\n"
        + "".join(f"{s},{loc},{n},{k}\n" for s, loc, n, k in rows)
    )
    for node in store_cluster.nodes:
        node.call("CONFIG", "RESETSTAT")
    imported = omnistock(store_cluster, "import", str(source), "--no-checkpoint")
    assert imported.returncode == 0, imported.stderr
    # The import's script runs as a function, routed by its keys (no COMMAND GETKEYS per call).
    stats = [node.client().info("commandstats") for node in store_cluster.nodes]
    assert sum(s.get("cmdstat_fcall", {}).get("calls", 0) for s in stats) > 0
    assert not any("cmdstat_evalsha" in s or "cmdstat_command|getkeys" in s for s in stats), [
        {k: v for k, v in s.items() if "command" in k or "eval" in k} for s in stats
    ]

    exported = omnistock(store_cluster, "export", "--for-import", "--quiet")
    assert exported.returncode == 0, exported.stderr
    got = {
        (r["sku"], r["location"], r["on_hand"], r["safety_stock"])
        for r in map(orjson.loads, exported.stdout.splitlines())
    }
    assert got == set(rows)

    audit = omnistock(store_cluster, "audit", "--json", "--quiet")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert orjson.loads(audit.stdout)["audit"]["findings"] == []

    again = omnistock(store_cluster, "import", str(source), "--no-checkpoint")
    assert again.returncode == 0, again.stderr  # absolute rows: a re-import changes nothing


async def supply_view(client: Any, skus: list[str]) -> dict[str, Any]:
    """Every sku's supply lines and availability (now, incoming, the next date), by channel
    and by location."""
    out: dict[str, Any] = {}
    for sku in skus:
        out[sku] = await supply_lines(client, sku)
        for scope in ({"channel": "web"}, {"location": "dc"}, {"location": "store-a"}):
            body = (await client.get(f"/v1/availability/{sku}", params=scope)).json()
            out[f"{sku} {scope}"] = (body["available"], body["incoming"], body["next_available_at"])
    return out


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
async def test_export_supply_round_trips_through_import_supply_on_a_cluster(
    store_cluster: LocalCluster, tmp_path: Path, fmt: str
) -> None:
    """`export --supply` on a cluster walks every primary's supply lines (a sku with supply and
    no position too); `--for-import` output, imported into the emptied cluster, gives the same
    lines and the same availability."""
    store_cluster.flushall()
    skus = skus_on_different_nodes("sup", per_node=2)  # 6 skus, 2 on each primary
    async with serving(store_cluster.seeds) as client:
        await seed(client, {(sku, "dc"): 2 for sku in skus[:4]})  # the last 2: supply only
        for i, sku in enumerate(skus):
            await ok_supply(client, sku, "dc", f"PO-{i}", 10 + i, days(3 + i))
            r = await put_supply(
                client, sku, "store-a", f"ASN-{i}", 4, days(1), "in_transit", reference=f"r {i}, q"
            )
            assert r.status_code == 200, r.text
        held = {
            "channel": "web",
            "allow_backorder": True,
            "lines": [{"sku": skus[0], "quantity": 5}],
        }
        assert (await client.post("/v1/holds", json=held)).status_code == 201
        before = await supply_view(client, skus)

    listed = omnistock(store_cluster, "export", "--supply", "--quiet")
    assert listed.returncode == 0, listed.stderr
    rows = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert sorted((r["sku"], r["supply_id"]) for r in rows) == sorted(
        (line["sku"], line["supply_id"]) for sku in skus for line in before[sku]
    )
    assert sum(r["promised"] for r in rows) == 3  # the hold: 2 on hand, 3 promised

    out = tmp_path / f"supply.{fmt}"
    exported = omnistock(
        store_cluster, "export", "--supply", "--for-import", "--format", fmt, "-o", str(out)
    )
    assert exported.returncode == 0, exported.stderr
    assert f"exported {2 * len(skus)} supply lines of {len(skus)} skus" in exported.stderr

    store_cluster.flushall()
    async with serving(store_cluster.seeds) as client:
        await seed(client, {(sku, "dc"): 2 for sku in skus[:4]})
        imported = omnistock(store_cluster, "import", "--supply", str(out), "--no-checkpoint")
        assert imported.returncode == 0, imported.stderr
        after = await supply_view(client, skus)
    # The hold did not travel (supply lines only): its sku's promised units and availability
    # differ; every other sku's lines and availability are the same.
    held_sku = [k for k in before if k.split(" ")[0] == skus[0]]
    assert {k: v for k, v in after.items() if k not in held_sku} == {
        k: v for k, v in before.items() if k not in held_sku
    }
    for line in after[skus[0]] + before[skus[0]]:
        del line["promised"], line["incoming"]
    assert after[skus[0]] == before[skus[0]]


def test_the_cli_with_no_cluster_node_reachable_exits_3() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "export", "--quiet"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("OMNISTOCK_")},
            "OMNISTOCK_REDIS_URL": "redis://127.0.0.1:1,redis://127.0.0.1:2",
            "OMNISTOCK_REDIS_CLUSTER": "1",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3, result.stderr
    assert "store unreachable" in result.stderr
