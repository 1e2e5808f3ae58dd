"""The bench harness at tiny scale, so `make bench` cannot rot: every measurement runs and the
report has its shape. No timing is asserted: these machines are shared and noisy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks import report
from benchmarks.harness import summarise_profile
from benchmarks.run import SMOKE, TARGETS, run
from benchmarks.sharding import partitions_per_primary

# The module's fixture runs every measurement (44 s alone on a loaded 2-core machine); beside
# the other xdist workers it needs more than the suite's 120 s.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(360)]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], Path]]:
    out = tmp_path_factory.mktemp("bench")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("OMNISTOCK_BENCH_PG_DSN", raising=False)
        results = run(SMOKE, out, out / "benchmarks.md")
    yield results, out


def test_every_measurement_has_a_row_with_figures_and_a_verdict(
    smoke: tuple[dict[str, Any], Path],
) -> None:
    results, _ = smoke
    rows = results["table"]
    measured = {row["measurement"].split(".")[0] for row in rows}
    assert measured == {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}
    for row in rows:
        assert row["figures"] and row["result"]
        assert row["met"] in ("met", "**missed**", "n/a")


def test_each_flash_sale_run_checks_for_oversell(smoke: tuple[dict[str, Any], Path]) -> None:
    results, _ = smoke
    for run_ in results["flash"]["runs"].values():
        oversell = run_["omnistock"]["oversell"]
        assert oversell["ok"], oversell
        assert oversell["requests"] > oversell["stock"] >= oversell["granted"]


def test_the_counter_peer_is_measured_and_each_side_runs_what_it_claims(
    smoke: tuple[dict[str, Any], Path],
) -> None:
    results, _ = smoke
    runs = [run_ for run_ in results["flash"]["runs"].values() if run_["workers"] == 1]
    assert len(runs) == len(SMOKE.flash_connections)
    for run_ in runs:
        omni, peer = run_["omnistock"]["store_per_hold"], run_["peer"]["store_per_hold"]
        # Omnistock: its script, and in it the position, the hold record and the event
        assert omni["fcall"] >= 1 and omni["xadd"] == 1 and omni["hset"] >= 2
        assert omni["eval"] == omni["decrby"] == 0
        # the peer: one EVAL of GET/DECRBY per purchase, nothing else
        assert peer["eval"] == peer["get"] == peer["decrby"] == 1
        assert peer["evalsha"] == peer["fcall"] == peer["xadd"] == peer["hset"] == 0
        assert peer["zadd"] == 0
        assert run_["peer"]["oversell"]["ok"], run_["peer"]["oversell"]
        assert run_["peer_ratio"] > 0
    rows = [r for r in results["table"] if "FastAPI + Lua counter" in r["measurement"]]
    assert len(rows) == len(SMOKE.flash_connections)
    assert all(r["met"] in ("met", "**missed**") for r in rows)


def test_keyed_holds_are_measured_against_unkeyed(smoke: tuple[dict[str, Any], Path]) -> None:
    results, _ = smoke
    keyed = results["scripts"]["keyed"]
    assert keyed["keyed"]["holds_per_s"] > 0 and keyed["unkeyed"]["holds_per_s"] > 0
    assert [r for r in results["table"] if r["measurement"].startswith("3. keyed")]


def test_the_postgres_baseline_is_skipped_cleanly_without_a_dsn(
    smoke: tuple[dict[str, Any], Path],
) -> None:
    results, _ = smoke
    assert results["flash"]["pg_skipped"] == "OMNISTOCK_BENCH_PG_DSN is not set"
    flash_rows = [r for r in results["table"] if r["measurement"].endswith("vs PostgreSQL")]
    assert flash_rows and all(r["result"] == "skipped" for r in flash_rows)


def test_the_import_is_measured_and_a_rerun_changes_nothing(
    smoke: tuple[dict[str, Any], Path],
) -> None:
    results, _ = smoke
    imported = results["import"]
    assert imported["positions"] == SMOKE.import_positions
    assert imported["rerun_changed"] == 0
    assert imported["bytes_per_position"] > imported["bytes_per_position_without_streams"] > 0


def test_the_document_and_plots_are_written(smoke: tuple[dict[str, Any], Path]) -> None:
    _, out = smoke
    doc = (out / "benchmarks.md").read_text()
    assert report.BEGIN in doc and report.END in doc
    assert "| 1. availability GET vs /healthz" in doc
    for png in ("latency_vs_load.png", "workers.png", "flash_sale.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert (out / "results.json").exists()


def test_the_cluster_is_measured_against_one_server_keyed_and_unkeyed(
    smoke: tuple[dict[str, Any], Path],
) -> None:
    results, _ = smoke
    shard = results["sharding"]
    for name in ("single", "single_keyed", "cluster", "cluster_keyed", "cluster_flash"):
        run_ = shard["runs"][name]
        assert run_["holds"] > 0 and run_["store_usec_per_hold"] > 0, (name, run_)
    # The claim is taken, and the response stored, by the hold script itself.
    assert shard["runs"]["cluster_keyed"]["script_calls_per_hold"] == 1
    assert shard["paper"]["flash_share_on_busiest"] == 1.0  # one sku: one primary
    assert len(shard["runs"]["cluster"]["per_primary"]) == 3


def test_the_wait_rows_are_measured_or_said_to_be_unavailable(
    smoke: tuple[dict[str, Any], Path],
) -> None:
    results, _ = smoke
    rows = [r for r in results["table"] if "OMNISTOCK_WAIT_REPLICAS=1 vs 0" in r["measurement"]]
    wait_rows = [r for r in rows if r["measurement"].startswith("8.")]
    assert len(wait_rows) == 2
    if results["sharding"]["wait_available"]:
        assert all(float(r["result"]) > 0 for r in wait_rows)
        assert results["sharding"]["runs"]["cluster_wait"]["wait_per_hold"] > 0
    else:
        assert all(r["result"] == "not available" for r in wait_rows)


def test_the_capacity_arithmetic_for_n_primaries_is_written(
    smoke: tuple[dict[str, Any], Path],
) -> None:
    results, out = smoke
    doc = (out / "benchmarks.md").read_text()
    assert "What N primaries would carry" in doc
    s_mix = results["sharding"]["paper"]["s_mix_usec"]
    for n in (1, 3, 6, 12):
        assert f"| {n} * 1e6 / {s_mix:.1f} = " in doc


def test_equal_slot_ranges_share_out_every_partition() -> None:
    assert partitions_per_primary(1) == [256]
    for n in (3, 6, 12):
        counts = partitions_per_primary(n)
        assert len(counts) == n and sum(counts) == 256


def test_a_new_run_replaces_only_the_generated_part_of_the_document(
    smoke: tuple[dict[str, Any], Path], tmp_path: Path
) -> None:
    results, out = smoke
    doc = tmp_path / "benchmarks.md"
    doc.write_text(
        "# Benchmarks\n\nHand-written analysis.\n\n"
        f"{report.BEGIN}\nstale figures\n{report.END}\n\nTail.\n"
    )
    report.write_doc(results, TARGETS, doc, out)
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nHand-written analysis.\n\n")
    assert text.endswith("\n\nTail.\n")
    assert "stale figures" not in text


def test_a_profile_is_summarised_by_area_and_function() -> None:
    raw = (
        "<module> (app/__main__.py:3);run (uvicorn/server.py:1);"
        "handle (app/api/stock_routes.py:60);evalsha (redis/commands/core.py:9) 30\n"
        "<module> (app/__main__.py:3);run (uvicorn/server.py:1);parse (httptools/parser.py:3) 10\n"
        "Thread._bootstrap (threading.py:1002);Condition.wait (threading.py:327) 50\n"
    )
    summary = summarise_profile(raw)
    assert summary["samples"] == 40
    assert dict(summary["areas"]) == {"redis-py client": 75.0, "uvicorn + httptools": 25.0}
    assert dict(summary["app_inclusive"]) == {"handle (app/api/stock_routes.py)": 75.0}


def test_webhook_delivery_delay_and_rate_are_in_the_table(
    smoke: tuple[dict[str, Any], Path],
) -> None:
    results, out = smoke
    hooks = results["webhooks"]
    assert hooks["bad_signatures"] == 0
    assert hooks["burst_events"] == SMOKE.webhook_changes
    assert hooks["delay_ms_p99"] >= hooks["delay_ms_p50"] > 0
    doc = (out / "benchmarks.md").read_text()
    assert "9. webhook delivery delay" in doc and "deliveries/s" in doc
