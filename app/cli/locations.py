"""`omnistock locations list|put`: the locations of a running service, over its HTTP API.

Through the API rather than the store, so a change gets the service's validation, its API-key
scopes (`admin` to change, `read` to list) and its idempotency, works against a deployment
whose store is not reachable from the operator's machine, and reaches every worker's
configuration cache the same way a change from any other client does.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from app.cli.common import Service, add_action, command, command_group, print_table

COLUMNS = ["id", "type", "name", "ship", "pickup", "priority"]
FIELDS = ["type", "name", "ship", "pickup", "priority"]
KEPT = [*FIELDS, "geo"]  # kept from the current location on an update (no flag sets geo yet)


@command("locations list")
def list_locations(args: argparse.Namespace) -> int:
    locations = Service.from_args(args).request("GET", "/v1/locations")["locations"]
    if args.json:
        print(orjson.dumps({"locations": locations}).decode())
    else:
        print_table(locations, COLUMNS)
    return 0


@command("locations put")
def put_location(args: argparse.Namespace) -> int:
    """Flags not given keep the location's current value (a new one gets the defaults)."""

    service = Service.from_args(args)
    current: dict[str, Any] = {}
    for location in service.request("GET", "/v1/locations")["locations"]:
        if location["id"] == args.id:
            current = {k: location[k] for k in KEPT if k in location}
    given = {k: getattr(args, k) for k in FIELDS if getattr(args, k) is not None}
    saved = service.request("PUT", f"/v1/locations/{args.id}", {**current, **given})
    if args.json:
        print(orjson.dumps(saved).decode())
    else:
        verb = "updated" if current else "registered"
        print(f"{verb} location {saved['id']}", file=sys.stderr)
        print_table([saved], COLUMNS)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    actions = command_group(
        sub,
        "locations",
        help="list or register locations (stores, DCs, 3PLs) of a running service",
        description="Manage the locations of a running service through its HTTP API. "
        "Exit 0 done, 1 the service refused, 2 usage or API-key error, 3 unreachable.",
    )
    add_action(
        actions,
        "list",
        list_locations,
        "every location, lowest sourcing priority first",
        service=True,
        json="print JSON",
    )
    p_put = add_action(
        actions,
        "put",
        put_location,
        help="register a location, or change the given fields of one",
        description="Register a location, or change only the fields given of an existing one.",
        service=True,
        json="print the saved location as JSON",
    )
    p_put.add_argument("id", help="location id, e.g. store-12")
    p_put.add_argument("--type", choices=["store", "warehouse", "dc", "3pl", "dropship"])
    p_put.add_argument("--name", help="display name")
    p_put.add_argument("--ship", action=argparse.BooleanOptionalAction, help="ships to customers")
    p_put.add_argument(
        "--pickup", action=argparse.BooleanOptionalAction, help="offers click & collect"
    )
    p_put.add_argument("--priority", type=int, help="sourcing order: lower is sourced first")
