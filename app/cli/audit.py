"""`omnistock audit`: check counters, hold indexes and the event log against the hold records.

Exit codes: 0 clean (or repaired clean), 1 drift found (and not all of it repaired), 2 usage
error (e.g. `--fix` without consent), 3 store unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import orjson

from app.cli.common import (
    OK,
    PROBLEM,
    USAGE,
    CliError,
    Progress,
    StoreServices,
    add_action,
    add_partition_flag,
    command,
    open_services,
    partitions,
)
from app.domain.audit import Auditor, AuditReport
from app.domain.holds import HoldService

SHOWN_FINDINGS = 50
# One partition's snapshot is one script call: allow a big partition its time.
STORE_TIMEOUT_SECONDS = 60.0


def _consent(args: argparse.Namespace, fixable: int) -> bool:
    if args.yes:
        return True
    print(f"repair {fixable} finding(s) from the hold records? [y/N] ", end="", file=sys.stderr)
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _print_report(report: AuditReport, title: str) -> None:
    print(
        f"{title}: {report.partitions} partitions, {report.holds} hold records, "
        f"{report.positions} positions, {report.events_checked} newest events checked"
    )
    if report.clean:
        print("clean: counters, indexes and events agree with the hold records")
        return
    fixable = sum(f.fixable for f in report.findings)
    print(f"drift: {len(report.findings)} finding(s), {fixable} repairable with --fix")
    for finding in report.findings[:SHOWN_FINDINGS]:
        mark = "" if finding.fixable else " (not repairable: needs a person)"
        print(f"  p{finding.partition:03d} {finding.kind}: {finding.message}{mark}")
    if len(report.findings) > SHOWN_FINDINGS:
        print(f"  ... and {len(report.findings) - SHOWN_FINDINGS} more (--json lists all)")


async def _audit(args: argparse.Namespace, wanted: list[int]) -> int:
    started = time.monotonic()
    async with open_services(args, STORE_TIMEOUT_SECONDS) as store:
        auditor = Auditor(store.redis, store.scripts, max_events=args.events)  # the store's clock
        report = await auditor.audit(wanted, Progress("audit", "findings", not args.quiet))
        out: dict[str, Any] = {"audit": report.as_dict()}
        if not args.json:
            _print_report(report, "audit")
        fixable = sum(f.fixable for f in report.findings)
        final = report
        if args.fix and fixable:
            if not _consent(args, fixable):
                print("not repaired", file=sys.stderr)
            else:
                final, out["repairs"] = await _repair(args, store, auditor, report, wanted)
                out["after_repair"] = final.as_dict()
    out["seconds"] = round(time.monotonic() - started, 3)
    if args.json:
        print(orjson.dumps(out).decode())
    return OK if final.clean else PROBLEM


async def _repair(
    args: argparse.Namespace,
    store: StoreServices,
    auditor: Auditor,
    report: AuditReport,
    wanted: list[int],
) -> tuple[AuditReport, list[dict[str, Any]]]:
    """Settle the pending parts and repair the partitions with repairable findings, then audit
    the same partitions again: (the new report, the changes made)."""
    settings, config = store.settings, store.config
    await config.refresh(force=True)
    holds = HoldService(store.redis, store.scripts, config, store.stock, settings, store.clock)
    changes = await auditor.settle_parts(report.findings, holds.settle)
    changes += await auditor.repair(
        sorted({f.partition for f in report.findings if f.fixable}),
        settings.event_retention_seconds * 1000,
        config.channels_arg(None),
        Progress("repair", "changes", not args.quiet),
    )
    final = await auditor.audit(wanted, Progress("re-audit", "findings", False))
    if not args.json:
        print(f"repaired: {len(changes)} change(s)")
        _print_report(final, "after repair")
    return final, changes


@command("audit")
def run_audit(args: argparse.Namespace) -> int:
    if args.fix and not args.yes and not sys.stdin.isatty():
        raise CliError(
            USAGE,
            "--fix changes the store: confirm with --yes (or run it on a terminal to be asked)",
        )
    return asyncio.run(_audit(args, partitions(args)))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_action(
        sub,
        "audit",
        run_audit,
        help="check counters, hold indexes and events against the hold records",
        description="Recompute every position's held and committed from the hold records and "
        "compare them with the stored counters; check the expiry and per-sku hold indexes, "
        "orphans, the parts of multi-partition holds and the newest event of each position. "
        "Exit 0 clean, 1 drift, 2 usage error, 3 store unreachable. Safe under live traffic: "
        "each partition is read in one atomic step. Progress goes to stderr.",
        json="print the report as JSON on stdout",
        store=True,
    )
    p.add_argument(
        "--fix",
        action="store_true",
        help="repair counters and indexes from the hold records (asks first; see --yes)",
    )
    p.add_argument("--yes", action="store_true", help="consent to --fix without asking")
    add_partition_flag(p, "audit only partition N (repeatable; default: all)")
    p.add_argument(
        "--events",
        type=int,
        default=10_000,
        metavar="N",
        help="read at most N newest events per partition for the event check (10000; 0: skip)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
