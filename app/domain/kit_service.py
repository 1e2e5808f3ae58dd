"""Define, read, list and delete kits (rules in app/domain/kits.py)."""

from __future__ import annotations

from typing import Any

from app import keys
from app.domain import kits
from app.domain.config import ConfigService
from app.domain.errors import InvalidRequest, KitNotFound
from app.domain.idempotency import Claim
from app.domain.models import KitIn
from app.domain.stock import StockService


class KitService:
    def __init__(self, config: ConfigService, stock: StockService) -> None:
        self._config = config
        self._stock = stock

    async def put(self, sku: str, body: KitIn, claim: Claim | None) -> dict[str, Any]:
        """Make `sku` a kit. Refused (422, nothing changed): a cycle, a component listed
        twice, and a base component the store has no position of (a typo would otherwise
        make a kit that is never available)."""
        if claim is not None:
            claim.lives_in(keys.CONFIG_TAG)  # a 422 below is stored there
        await self._config.refresh()
        base = kits.check(self._config.kits, sku, body)
        positions = await self._stock.positions_of(list(base))
        unknown = [s for s, rows in zip(base, positions, strict=True) if not rows]
        if unknown:
            raise InvalidRequest(
                "every component must be a sku with stock positions, or a kit",
                errors=[
                    {"loc": ["body", "components"], "msg": f"unknown sku {u!r}"} for u in unknown
                ],
            )
        await self._config.put_kit(sku, kits.document(body), claim)
        return self.get_known(sku)

    def get_known(self, sku: str) -> dict[str, Any]:
        return self._config.kits[sku].model_dump()

    async def get(self, sku: str) -> dict[str, Any]:
        if sku not in self._config.kits:
            await self._config.refresh()
        if sku not in self._config.kits:
            raise KitNotFound(f"{sku!r} is not a kit")
        return self.get_known(sku)

    async def list(self) -> list[dict[str, Any]]:
        await self._config.refresh()
        return [self._config.kits[s].model_dump() for s in sorted(self._config.kits)]

    async def delete(self, sku: str, claim: Claim | None) -> dict[str, Any]:
        """Delete a kit. Refused while another kit lists it as a component (409 would do too;
        422 keeps one code for "this definition change is not allowed")."""
        if claim is not None:
            claim.lives_in(keys.CONFIG_TAG)
        kit = await self.get(sku)
        users = [
            k.sku for k in self._config.kits.values() if any(c.sku == sku for c in k.components)
        ]
        if users:
            raise InvalidRequest(
                f"kit {sku!r} is a component of {', '.join(sorted(users))}",
                errors=[{"loc": ["path", "sku"], "msg": "used by another kit"}],
            )
        await self._config.put_kit(sku, b"", claim)
        return kit
