"""`omnistock import`, `export` and `audit` as subprocesses against a cluster with replicas."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.cluster.support import LocalCluster, omnistock_cli, serving
from tests.conftest import seed

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
