"""`omnistock config reference`: every OMNISTOCK_* setting, its default and meaning, as the
Markdown table README.md's "Configuration" section holds (generated from app/settings.py)."""

from __future__ import annotations

import argparse
import sys

from app.settings import reference_table


def reference(args: argparse.Namespace) -> int:
    sys.stdout.write(reference_table())
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "config",
        help="the configuration reference",
        description="The service's settings (OMNISTOCK_* environment variables).",
    )
    config_sub = p.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    p_ref = config_sub.add_parser(
        "reference",
        help="every setting, its default and meaning, as a Markdown table",
        description="Print every OMNISTOCK_* setting with its default and meaning (Markdown).",
    )
    p_ref.set_defaults(func=reference)
