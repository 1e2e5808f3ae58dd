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

pytestmark = pytest.mark.slow


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
    assert {row["measurement"].split(".")[0] for row in rows} == {"1", "2", "3", "4", "5", "6", "7"}
    for row in rows:
        assert row["figures"] and row["result"]
        assert row["met"] in ("met", "**missed**", "n/a")


def test_each_flash_sale_run_checks_for_oversell(smoke: tuple[dict[str, Any], Path]) -> None:
    results, _ = smoke
    for run_ in results["flash"]["runs"].values():
        oversell = run_["omnistock"]["oversell"]
        assert oversell["ok"], oversell
        assert oversell["requests"] > oversell["stock"] >= oversell["granted"]


def test_the_postgres_baseline_is_skipped_cleanly_without_a_dsn(
    smoke: tuple[dict[str, Any], Path],
) -> None:
    results, _ = smoke
    assert results["flash"]["pg_skipped"] == "OMNISTOCK_BENCH_PG_DSN is not set"
    flash_rows = [r for r in results["table"] if r["measurement"].startswith("2.")]
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
