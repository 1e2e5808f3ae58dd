"""Kits: a sku made of other skus. The definition is configuration (`os:{cfg}:kits`, cached in
every process like locations and channels); a kit has no stock of its own.

- A component may itself be a kit (expanded to its base components); a kit that contains
  itself, directly or through another kit, is refused, as are a component listed twice and
  a component sku the store has never seen (no position anywhere, and not a kit): 422.
- A kit's availability at a location is the minimum over its base components of
  floor(available / quantity), over the locations where every component has a position
  (`kit_available`, the one home of that rule).
- A hold line for a kit reserves every base component at one location, all or nothing
  (app/domain/holds.py expands it into component lines of one group; hold_reserve.lua
  sources a group at one location).
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from app.domain.errors import InvalidRequest
from app.domain.models import HoldLineIn, Kit, KitIn

MAX_DEPTH = 8  # nested kits deeper than this are refused (and a cycle is found before)


def expand(kits: Mapping[str, Kit], sku: str, quantity: int = 1) -> dict[str, int]:
    """The base components of `quantity` units of kit `sku`: {sku: units}, in definition order."""
    out: dict[str, int] = {}
    _expand(kits, sku, quantity, out, ())
    return out


def _expand(
    kits: Mapping[str, Kit], sku: str, quantity: int, out: dict[str, int], path: tuple[str, ...]
) -> None:
    if sku in path:
        raise InvalidRequest(
            f"kit {path[0]!r} contains itself (through {' -> '.join((*path, sku))})",
            errors=[{"loc": ["body", "components"], "msg": "kit contains itself"}],
        )
    kit = kits.get(sku)
    if kit is None:
        out[sku] = out.get(sku, 0) + quantity
        return
    if len(path) >= MAX_DEPTH:
        raise InvalidRequest(
            f"kits nest at most {MAX_DEPTH} deep",
            errors=[{"loc": ["body", "components"], "msg": "kits nested too deep"}],
        )
    for c in kit.components:
        _expand(kits, c.sku, quantity * c.quantity, out, (*path, sku))


def check(kits: Mapping[str, Kit], sku: str, body: KitIn) -> dict[str, int]:
    """Refuse a definition that repeats a component or makes a cycle; returns its base
    components (what the caller checks the store knows)."""
    seen: set[str] = set()
    for i, c in enumerate(body.components):
        if c.sku in seen:
            raise InvalidRequest(
                f"component {c.sku!r} is listed twice",
                errors=[{"loc": ["body", "components", i, "sku"], "msg": "listed twice"}],
            )
        seen.add(c.sku)
    proposed = {**kits, sku: Kit(sku=sku, components=body.components)}
    return expand(proposed, sku)


def document(body: KitIn) -> bytes:
    return orjson.dumps({"components": [c.model_dump() for c in body.components]})


def kit_available(
    components: Mapping[str, int], found: Mapping[str, Mapping[str, int]]
) -> dict[str, int]:
    """THE kit rule: {location: units of the kit} from each base component's units `found`
    {sku: {location: available}}: min over components of available // quantity, at the
    locations where every component has a position."""
    skus = list(components)
    common = set(found.get(skus[0], {}))
    for sku in skus[1:]:
        common &= set(found.get(sku, {}))
    return {
        loc: min(found[sku][loc] // q for sku, q in components.items()) for loc in sorted(common)
    }


class KitLine(HoldLineIn):
    """A component line of a hold's kit line: every line of one `group` is sourced at one
    location (hold_reserve.lua's "g")."""

    group: int


def kit_lines(kits: Mapping[str, Kit], lines: list[HoldLineIn]) -> list[HoldLineIn]:
    """A hold's lines with each kit line replaced by its base components (group = the kit
    line's position, 1-based), at the kit line's location if it has one."""
    if not kits or not any(line.sku in kits for line in lines):
        return lines
    out: list[HoldLineIn] = []
    for i, line in enumerate(lines, 1):
        if line.sku not in kits:
            out.append(line)
            continue
        for sku, units in expand(kits, line.sku, line.quantity).items():
            out.append(KitLine(sku=sku, quantity=units, location=line.location, group=i))
    return out
