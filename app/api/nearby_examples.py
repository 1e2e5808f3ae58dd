"""The find-in-store and kit routes' OpenAPI examples (merged into openapi_examples.OPERATIONS)."""

from __future__ import annotations

from typing import Any

_STORE_7 = {"location": "store-7", "name": "Store 7 Bastille", "distance_km": 3.345}
_STORE_9 = {"location": "store-9", "name": "Store 9 La Defense", "distance_km": 7.191}
_CART = {
    "lines": [{"sku": "SKU-2", "quantity": 1}, {"sku": "SKU-3", "quantity": 2}],
    "lat": 48.8706,
    "lon": 2.3318,
    "radius_km": 10,
    "channel": "web",
}
_KIT = {
    "sku": "KIT-1",
    "components": [{"sku": "SKU-2", "quantity": 1}, {"sku": "SKU-3", "quantity": 2}],
}
_KIT_BODY = {"components": _KIT["components"]}

NEARBY_OPERATIONS: dict[str, dict[str, Any]] = {
    "GET /v1/availability/{sku}/nearby": {
        "response": {
            "sku": "SKU-2",
            "channel": "pos",
            "locations": [{**_STORE_7, "available": 5}, {**_STORE_9, "available": 1}],
        },
        "errors": ("channel_not_found",),
    },
    "POST /v1/availability/nearby": {
        "response": {
            "channel": "web",
            "locations": [
                {
                    **_STORE_7,
                    "lines": [{"sku": "SKU-2", "available": 4}, {"sku": "SKU-3", "available": 4}],
                }
            ],
        },
        "request": {
            "cart": {"summary": "Which stores near store 5 have the whole cart", "value": _CART}
        },
        "errors": ("channel_not_found",),
    },
    "PUT /v1/kits/{sku}": {
        "response": _KIT,
        "request": {"kit": {"summary": "One SKU-2 and two SKU-3 make a KIT-1", "value": _KIT_BODY}},
        "idempotent": True,
    },
    "GET /v1/kits": {"response": {"kits": [_KIT]}},
    "GET /v1/kits/{sku}": {"response": _KIT, "errors": ("kit_not_found",)},
    "DELETE /v1/kits/{sku}": {"response": _KIT, "errors": ("kit_not_found",), "idempotent": True},
}
